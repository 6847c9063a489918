"""ONNX export of saved sequence classifiers, a parity check, and an ONNX Runtime predictor.

``frugaltext export --model DIR`` writes ``DIR/model.onnx`` (``DIR/model.int8.onnx`` with
``--quantization int8``) through ``torch.onnx.export`` (the TorchScript exporter, opset 17, dynamic batch
and sequence axes; it needs the ``onnx`` package, and ONNX Runtime runs the file: ``pip install -e
'.[onnx]'``). int8 files are made by ONNX Runtime's own dynamic quantization
(``onnxruntime.quantization.quantize_dynamic``, int8 weights of the MatMul/Gemm nodes), the ONNX
counterpart of :func:`frugaltext.fastpath.quantize_int8`. Beside each file a parity check,
``<file>.parity.json`` (``model.parity.json``), compares ONNX Runtime with the torch model in fp32: the
largest absolute logit difference and the share of documents given the same labels.

``predict --backend onnx`` loads the file with :func:`load_onnx_model`: the tokenizer, labels and
``max_length``/``truncation`` come from the model directory, so predictions match those of the torch model
up to float rounding. Only ``bert`` models export (plain transformers ``AutoModelForSequenceClassification``
checkpoints, single- and multi-label); the other methods raise :class:`~frugaltext.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.fileio import atomic_write_text

__all__ = ["ONNX_METHODS", "OnnxClassifier", "default_onnx_path", "export_onnx", "load_onnx_model",
           "parity_path"]

#: Methods whose saved model exports (a transformers sequence classifier taking input_ids + attention_mask).
ONNX_METHODS = ("bert",)
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX Runtime is not installed; install the optional extra: pip install -e "
                          "'.[onnx]' (onnxruntime and onnx)") from None
    return onnxruntime


def default_onnx_path(model_dir: str | Path, quantization: str | None = None) -> Path:
    """``DIR/model.onnx``, or ``DIR/model.int8.onnx`` for ``quantization="int8"``."""
    return Path(model_dir) / ("model.int8.onnx" if quantization == "int8" else "model.onnx")


def parity_path(onnx_path: str | Path) -> Path:
    """The parity report beside an ONNX file: ``model.onnx`` -> ``model.parity.json``."""
    path = Path(onnx_path)
    stem = path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.name
    return path.with_name(stem + ".parity.json")


def _check_quantization(quantization: str | None) -> str | None:
    value = None if quantization in (None, "none") else str(quantization).lower()
    if value not in (None, "int8"):
        raise ConfigError(f"export: quantization must be none or int8, got {quantization!r}")
    return value


class _LogitsOnly:
    """Build the torch module that ``torch.onnx.export`` traces: (input_ids, attention_mask) -> logits."""

    @staticmethod
    def wrap(model: Any) -> Any:
        import torch

        class LogitsOnly(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

        return LogitsOnly(model).eval()


def _encode_batches(tokenizer: Any, texts: Sequence[str], max_length: int, truncation: str,
                    batch_size: int) -> tuple[list[list[int]], list[Any]]:
    from frugaltext.data.collate import encode_texts, length_sorted_batches

    ids = encode_texts(tokenizer, texts, max_length, truncation)
    return ids, length_sorted_batches([len(t) for t in ids], batch_size)


def _padded(ids: Sequence[Sequence[int]], index: Sequence[int], pad_token_id: int) -> dict[str, np.ndarray]:
    longest = max(len(ids[i]) for i in index)
    input_ids = np.full((len(index), longest), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(index), longest), dtype=np.int64)
    for row, i in enumerate(index):
        input_ids[row, : len(ids[i])] = ids[i]
        mask[row, : len(ids[i])] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


class OnnxClassifier:
    """A saved ``bert`` model run by ONNX Runtime: ``predict_logits``/``predict_proba``/``predict`` as a
    :class:`~frugaltext.methods.base.Method`.

    Attributes
    ----------
    name : str
        ``"bert (onnx)"`` or ``"bert (onnx int8)"``.
    path : Path
        The ONNX file.
    label_names : tuple of str
    multi_label : bool
    """

    def __init__(self, path: Path, tokenizer: Any, label_names: Sequence[str], multi_label: bool,
                 max_length: int, truncation: str = "head", method: str = "bert",
                 threads: int | None = None) -> None:
        ort = _require_onnxruntime()
        options = ort.SessionOptions()
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.label_names = tuple(label_names)
        self.multi_label = bool(multi_label)
        self.max_length = int(max_length)
        self.truncation = truncation
        self.name = f"{method} (onnx{' int8' if '.int8.' in self.path.name else ''})"

    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Logits, shape ``(n_docs, num_labels)`` float32, in the input order (batched by similar length)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        ids, batches = _encode_batches(self.tokenizer, texts, self.max_length, self.truncation, batch_size)
        pad = int(self.tokenizer.pad_token_id or 0)
        out = np.zeros((len(ids), len(self.label_names)), dtype=np.float32)
        for index in batches:
            out[index] = self.session.run(["logits"], _padded(ids, index, pad))[0]
        return out

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Softmax (single-label) or sigmoid (multi-label) probabilities, shape ``(n_docs, num_labels)``."""
        from frugaltext.training.hf import logits_to_proba

        return logits_to_proba(self.predict_logits(texts, batch_size), self.multi_label)

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Label ids ``(n_docs,)`` or a 0/1 matrix ``(n_docs, num_labels)`` (multi-label, p >= 0.5)."""
        from frugaltext.methods.base import probabilities_to_predictions

        return probabilities_to_predictions(self.predict_proba(texts, batch_size), self.multi_label)


def load_onnx_model(model_dir: str | Path, quantization: str | None = None,
                    path: str | Path | None = None) -> OnnxClassifier:
    """The ONNX predictor of a saved model directory.

    Parameters
    ----------
    model_dir : path
        Directory written by ``frugaltext train`` (tokenizer, labels and settings are read there).
    quantization : {None, "none", "int8"}
        Which file to use by default: ``model.onnx`` or ``model.int8.onnx``.
    path : path, optional
        Another ONNX file exported from this model.

    Raises
    ------
    ModelLoadError
        If the ONNX file is missing (the message says how to export it) or the model is not a ``bert`` one.
    ConfigError
        If ONNX Runtime is not installed, or ``quantization`` is not none/int8.
    """
    from transformers import AutoTokenizer

    from frugaltext.methods.base import read_method_meta, resolve_method_name

    model_dir = Path(model_dir)
    quantization = _check_quantization(quantization)
    meta = read_method_meta(model_dir)
    method = resolve_method_name(meta["method"])
    onnx_path = Path(path) if path is not None else default_onnx_path(model_dir, quantization)
    if not onnx_path.is_file():
        flag = " --quantization int8" if quantization else ""
        raise ModelLoadError(f"{onnx_path} does not exist; export it first: frugaltext export --model "
                             f"{model_dir}{flag}")
    if method not in ONNX_METHODS:
        raise ModelLoadError(f"{model_dir} holds a {method!r} model; the ONNX backend runs "
                             f"{', '.join(ONNX_METHODS)} models only")
    settings = meta.get("settings", {})
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return OnnxClassifier(onnx_path, tokenizer, meta["label_names"], bool(meta["multi_label"]),
                          max_length=int(settings.get("max_length", 128)),
                          truncation=settings.get("truncation", "head"), method=method)


def _parity_texts(method: Any, data: str | Path | None, max_docs: int) -> tuple[list[str], str]:
    """Up to ``max_docs`` validation texts of ``data`` (its test split when it has no validation), or
    random token sequences when no data is given."""
    if data is not None:
        from frugaltext.data import load_data

        dataset = load_data(data)
        split = dataset.validation if dataset.validation is not None and len(dataset.validation) else (
            dataset.test if dataset.test is not None and len(dataset.test) else dataset.train)
        return list(split.texts)[:max_docs], f"{data} ({split.name} split)"
    rng = np.random.default_rng(0)
    vocab = [w for w in method.tokenizer.get_vocab() if w.isalpha()] or ["a"]
    n = min(max_docs, 32)
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(1, 200)))) for _ in range(n)]
    return texts, "random words of the tokenizer's vocabulary (no --data given)"


def export_onnx(model_dir: str | Path, output: str | Path | None = None, quantization: str | None = None,
                data: str | Path | None = None, max_docs: int = 200, batch_size: int = 32) -> dict[str, Any]:
    """Export a saved ``bert`` model to ONNX and check it against the torch model.

    Parameters
    ----------
    model_dir : path
        Directory written by ``frugaltext train`` / ``Method.save`` (a ``bert`` model).
    output : path, optional
        The ``.onnx`` file; default :func:`default_onnx_path` (inside ``model_dir``, where ``predict
        --backend onnx`` looks).
    quantization : {None, "none", "int8"}
        int8: ONNX Runtime dynamic quantization of the exported graph's weights.
    data : str or path, optional
        Dataset (embedded name, directory or file) whose validation documents feed the parity check; None:
        random word sequences.
    max_docs : int
        Documents of the parity check.

    Returns
    -------
    dict
        The parity report also written to :func:`parity_path` of the output: ``max_abs_logit_diff``,
        ``label_agreement`` (share of documents with the same predicted label(s)), ``n_docs``, ``docs``,
        ``onnx_file``, ``quantization``, ``opset``, versions.

    Raises
    ------
    ConfigError
        The model is not a ``bert`` one, ONNX Runtime/onnx are missing, bad ``quantization``/``max_docs``.
    ModelLoadError
        ``model_dir`` is not a saved model.
    """
    import torch

    from frugaltext.experiment.provenance import package_version
    from frugaltext.methods.base import load_model, probabilities_to_predictions
    from frugaltext.training.hf import logits_to_proba

    quantization = _check_quantization(quantization)
    if max_docs < 1:
        raise ConfigError(f"export: --max-docs must be at least 1, got {max_docs}")
    model_dir = Path(model_dir)
    if output is not None:  # checked before any work (a directory, a path under a file, a wrong ending)
        from frugaltext.fileio import check_output_file

        output = check_output_file(output, "--output", suffixes=(".onnx",))
    method = load_model(model_dir)
    if dataclasses.is_dataclass(method.settings) and hasattr(method.settings, "precision"):
        # the reference of the parity check is the fp32 torch model, whatever the saved settings say
        method.settings = dataclasses.replace(method.settings, precision="fp32",
                                              inference_quantization="none")
    if method.name not in ONNX_METHODS:
        raise ConfigError(
            f"export: {model_dir} holds a {method.name!r} model; ONNX export supports "
            f"{', '.join(ONNX_METHODS)} (a plain transformers sequence classifier). topicbert needs its bag "
            "of words, early-exit stops per document and the students are not transformers models; "
            "predict with those through torch (predict --quantization int8 works for every torch method)")
    _require_onnxruntime()
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise ConfigError("export: the onnx package is missing; pip install -e '.[onnx]'") from None
    output = Path(output) if output is not None else default_onnx_path(model_dir, quantization)
    if output.suffix != ".onnx":
        raise ConfigError(f"export: the output {output} must end in .onnx")
    output.parent.mkdir(parents=True, exist_ok=True)

    model = method.model.float().cpu().eval()
    wrapped = _LogitsOnly.wrap(model)
    # the example has a padded row so that the mask path is traced, not constant-folded away
    example_ids = torch.full((2, 8), int(method.tokenizer.pad_token_id or 0), dtype=torch.long)
    example_ids[:, 0] = int(method.tokenizer.cls_token_id or 0)
    example_ids[0, 1:7] = example_ids[1, 1:4] = int(method.tokenizer.unk_token_id or 1)
    example_mask = torch.zeros_like(example_ids)
    example_mask[0, :7] = example_mask[1, :4] = 1
    dynamic = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
               "logits": {0: "batch"}}
    with tempfile.TemporaryDirectory(prefix="frugaltext-onnx-") as tmp:
        fp32_path = output if quantization is None else Path(tmp) / "model.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(wrapped, (example_ids, example_mask), str(fp32_path),
                              input_names=list(INPUT_NAMES), output_names=["logits"], dynamic_axes=dynamic,
                              opset_version=OPSET, dynamo=False)
        if quantization == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32_path), str(output), weight_type=QuantType.QInt8)

    settings = method.settings
    runner = OnnxClassifier(output, method.tokenizer, method.label_names, method.multi_label,
                            max_length=settings.max_length, method=method.name,
                            truncation=getattr(settings, "truncation", "head"))
    texts, source = _parity_texts(method, data, max_docs)
    reference = method.predict_logits(texts, batch_size)
    got = runner.predict_logits(texts, batch_size)
    y_ref = probabilities_to_predictions(logits_to_proba(reference, method.multi_label), method.multi_label)
    y_got = probabilities_to_predictions(logits_to_proba(got, method.multi_label), method.multi_label)
    same = (y_ref == y_got).all(axis=1) if method.multi_label else (y_ref == y_got)
    report = {
        "onnx_file": str(output),
        "model_dir": str(model_dir),
        "method": method.name,
        "quantization": quantization or "none",
        "opset": OPSET,
        "n_docs": len(texts),
        "docs": source,
        "max_abs_logit_diff": float(np.max(np.abs(reference - got))) if len(texts) else 0.0,
        "label_agreement": float(np.mean(same)) if len(texts) else 1.0,
        "multi_label": method.multi_label,
        "reference": "torch fp32 logits of the saved model",
        "torch_version": package_version("torch"),
        "onnxruntime_version": package_version("onnxruntime"),
        "onnx_version": package_version("onnx"),
    }
    atomic_write_text(parity_path(output), json.dumps(report, indent=2) + "\n")
    return report
