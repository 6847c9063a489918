"""Small builders shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

import numpy as np

from frugaltext.data.dataset import Split, TextClassificationData


def make_data(texts, labels, multi_label=False, name="toy", test_texts=None, test_labels=None):
    """A TextClassificationData whose train = validation = test = the given toy rows (unless test is
    given)."""
    if multi_label:
        names = tuple(sorted({lab for row in labels for lab in row}))
        index = {n: i for i, n in enumerate(names)}

        def encode(rows):
            y = np.zeros((len(rows), len(names)), dtype=np.float32)
            for r, row in enumerate(rows):
                for lab in row:
                    y[r, index[lab]] = 1.0
            return y
    else:
        names = tuple(sorted(set(labels)))
        index = {n: i for i, n in enumerate(names)}

        def encode(rows):
            return np.array([index[lab] for lab in rows], dtype=np.int64)

    def split(name, t, y):
        return Split(name=name, texts=list(t), labels=encode(y),
                     ids=[f"{name}:{i + 1}" for i in range(len(t))])

    test_texts = texts if test_texts is None else test_texts
    test_labels = labels if test_labels is None else test_labels
    return TextClassificationData(
        name=name,
        train=split("train", texts, labels),
        validation=split("validation", texts, labels),
        test=split("test", test_texts, test_labels),
        label_names=names,
        multi_label=multi_label,
    )


# ---- tiny-model runs in subprocesses (resume after SIGKILL, torchrun) ------------------------------------

#: Three separable classes over words of the tiny BERT vocabulary (tests/conftest.py WORDS).
TINY_TOPICS = {
    "earn": "company profit quarter net shares revenue",
    "crude": "oil crude barrel prices opec said",
    "grain": "wheat grain tonnes trade year market",
}


def write_tiny_corpus(directory, n_train_per_class=4, n_validation_per_class=2, n_test_per_class=2):
    """Write ``train.jsonl``, ``validation.jsonl`` and ``test.jsonl`` (3 separable classes, 3-word texts over
    the tiny BERT vocabulary) into ``directory``; return the directory."""
    import json
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    words = {label: text.split() for label, text in TINY_TOPICS.items()}

    def rows(n, offset):
        return [{"text": " ".join(ws[(i + offset + j) % len(ws)] for j in range(3)), "label": label}
                for label, ws in words.items() for i in range(n)]

    for name, n, offset in (("train", n_train_per_class, 0), ("validation", n_validation_per_class, 1),
                            ("test", n_test_per_class, 2)):
        (directory / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n, offset)),
                                                 encoding="utf-8")
    return directory


def tiny_bert_settings(model_dir, **extra):
    """``bert`` settings for a fast run on a tiny checkpoint (no progress bar, short inputs, batch 2)."""
    settings = {"model_name_or_path": str(model_dir), "max_length": 16, "batch_size": 2,
                "eval_batch_size": 8, "epochs": 2, "warmup_ratio": 0.0, "show_progress": False}
    settings.update(extra)
    return settings


def subprocess_env(**extra):
    """Environment for a frugaltext subprocess: this checkout's ``src`` first, one thread, offline."""
    import os
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


#: Python run in a subprocess by :func:`compare_killed_at_step`: train through ``run_compare`` with a callback
#: that SIGKILLs the process itself at the end of optimisation step ``kill_at`` (a kill at a known point, no
#: timing race), as ``kill -9`` or an out-of-memory killer would.
_KILLED_COMPARE = r"""
import json, os, signal, sys
import frugaltext.methods.torch_method as torch_method
from transformers import TrainerCallback
from frugaltext.experiment.config import resolve_config
from frugaltext.experiment.runner import run_compare

kill_at = int(sys.argv[2])


class KillAt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


real = torch_method.train_with_trainer


def train_with_trainer(*args, callbacks=(), **kwargs):
    return real(*args, callbacks=[*callbacks, KillAt()], **kwargs)


torch_method.train_with_trainer = train_with_trainer
run_compare(resolve_config(overrides=json.loads(sys.argv[1])), progress=False)
"""


def compare_killed_at_step(overrides, kill_at, timeout_s=300):
    """Run ``compare`` with ``overrides`` (a dict as :func:`resolve_config` takes) in a subprocess that is
    SIGKILLed at the end of optimisation step ``kill_at``; return the ``CompletedProcess`` (returncode
    -9)."""
    import json
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", _KILLED_COMPARE, json.dumps(overrides), str(kill_at)],
                          env=subprocess_env(), capture_output=True, text=True, timeout=timeout_s)


#: ``sitecustomize.py`` for :func:`write_probe`: an audit hook that records, per rank, every path under
#: ``FRUGALTEXT_PROBE_WATCH`` that the process opens for writing, creates, renames or removes.
_PROBE = r'''
import os, sys

_watch = os.environ.get("FRUGALTEXT_PROBE_WATCH")
_log = os.path.join(os.environ.get("FRUGALTEXT_PROBE_DIR", "."), "rank%s.txt" % os.environ.get("RANK", "x"))


def _hook(event, args):
    if not _watch or event not in ("open", "os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree"):
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if not writing:
            return
        paths = [path]
    else:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    for p in paths:
        try:
            p = os.path.abspath(os.fsdecode(p))
        except Exception:
            continue
        if p.startswith(_watch):
            with open(_log, "a", encoding="utf-8") as f:
                f.write("%s %s\n" % (event, p))


sys.addaudithook(_hook)
'''


def write_probe(directory):
    """Write the write-recording ``sitecustomize.py`` into ``directory`` (put it first on PYTHONPATH and set
    ``FRUGALTEXT_PROBE_WATCH``/``FRUGALTEXT_PROBE_DIR``); return the directory."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_PROBE, encoding="utf-8")
    return directory
