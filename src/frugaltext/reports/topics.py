"""The topic-model part of a comparison report: NVDM perplexity, NPMI coherence and top words.

TopicBERT (Chaudhary et al. 2020) shows the topics its NVDM learned beside Table 3; ``table.md`` gets the
same from the rows of ``results.json`` whose notes hold NVDM figures (``topicbert`` and ``bert-avg-dtr`` runs)
and from the ``topics.txt`` saved with each such model (``models/<method>-seed<k>/topics.txt``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_topic_section"]

#: (notes key, column header) of the NVDM figures shown per run.
_COLUMNS = (
    ("nvdm_perplexity", "perplexity (pretrained NVDM)"),
    ("npmi", "NPMI (pretrained)"),
    ("nvdm_perplexity_finetuned", "perplexity (after joint fine-tuning)"),
    ("npmi_finetuned", "NPMI (after joint fine-tuning)"),
)


def _fmt(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "–"


def render_topic_section(rows: Sequence[Mapping[str, Any]], results_dir: str | Path,
                         n_topics_shown: int = 10) -> str:
    """Markdown section on the runs' topic models, or ``""`` when no row has NVDM notes.

    Parameters
    ----------
    rows : sequence of result rows (``results.json``)
    results_dir : path
        Folder of ``results.json``; topic words are read from ``models/<method>-seed<k>/topics.txt`` there.
    n_topics_shown : int
        Topics listed for the first run that saved its topic words.

    Returns
    -------
    str
        A "Topic models" section: one line per run with perplexity (held-out validation documents, per word)
        and NPMI (mean over topics of the top words' pairwise NPMI on the training documents), and the
        first ``n_topics_shown`` topics of the first run with a ``topics.txt``.
    """
    runs = [r for r in rows if isinstance(r.get("notes"), Mapping)
            and any(k in r["notes"] for k in ("nvdm_perplexity", "npmi"))]
    if not runs:
        return ""
    lines = ["## Topic models (NVDM)", "",
             "| run | " + " | ".join(h for _, h in _COLUMNS) + " | vocabulary | topics |",
             "|---|" + "---:|" * (len(_COLUMNS) + 2)]
    for r in runs:
        notes = r["notes"]
        cells = [_fmt(notes.get(k)) for k, _ in _COLUMNS]
        lines.append(f"| {r['method']}-seed{r['seed']} | " + " | ".join(cells)
                     + f" | {notes.get('bow_vocab_size', '–')} | {notes.get('n_topics', '–')} |")
    lines += ["", "Perplexity: held-out validation documents, corpus-level exp(sum of bounds / sum of words) "
              "(lower is better). NPMI: mean normalised pointwise mutual information of each topic's top "
              "words on the training documents, averaged over topics (-1 to 1, higher is more coherent; a "
              "pair never found together scores -1). Runs since issue 15 rank top words by c + 2 U_k (the "
              "model's probability of each word along topic k), earlier ones by U_k alone as the authors; "
              "see docs/topics.md.",
              ""]
    for r in runs:
        path = Path(results_dir) / "models" / f"{r['method']}-seed{r['seed']}" / "topics.txt"
        if path.is_file():
            topics = [t for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
            lines += [f"Top words of the first {min(n_topics_shown, len(topics))} of {len(topics)} topics "
                      f"({r['method']}-seed{r['seed']}, `{path.relative_to(results_dir).as_posix()}`):", ""]
            lines += [f"- {t}" for t in topics[:n_topics_shown]]
            lines.append("")
            break
    return "\n".join(lines)
