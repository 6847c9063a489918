"""The fast path shared by every torch method: precision, int8 inference, batching and threads.

* **Precision** (``precision: fp32 | bf16 | auto``): bf16 trains through the ``Trainer``'s ``bf16=True``
  (mixed precision: fp32 master weights, matrix products under ``torch.autocast`` in bf16) and predicts
  under ``torch.autocast(device, dtype=torch.bfloat16)``. ``auto`` picks bf16 only where the hardware has
  bf16 matrix units: a CPU whose ``/proc/cpuinfo`` flags include ``amx_bf16`` or ``avx512_bf16`` (Intel
  Sapphire Rapids and later, AMD Zen 4 and later), or a CUDA device with bf16 support; elsewhere bf16 is
  emulated and slower than fp32 (on an AVX2-only AMD EPYC, for example), so ``auto`` keeps fp32.
  Measured on a Xeon with AMX, MiniLM + 8-class head, 2 threads: inference 32 x 128 tokens 47-53 docs/s in
  fp32, 115-122 in bf16; a training step 16 x 128: 10-11 docs/s fp32, 15 bf16.
* **int8 inference** (``inference_quantization: int8``, ``load_model(dir, quantization="int8")``): dynamic
  int8 quantization of every ``nn.Linear`` (weights int8 per tensor, activations quantized per batch at run
  time), applied to a copy of the model used for prediction only, so the saved checkpoint stays a standard
  fp32 transformers checkpoint. See :func:`quantize_int8` for why ``torch.ao`` rather than torchao.
* **Batching** (``batching: random | grouped | grouped-megabatch``): grouped = batches of similar length in
  random order (transformers' ``get_length_grouped_indices`` megabatches of 50 batches, each sorted by
  length, then the batches shuffled: :mod:`frugaltext.training.length_grouping`), so batches hold documents
  of similar length while training stays stochastic. On Reuters-8 at 128 tokens and batch 16, random
  batches compute 1.57 x the real tokens, grouped 1.01 x. ``grouped-megabatch`` is transformers' own order
  (each megabatch swept from the longest to the shortest batch), kept for comparison: it cost macro-F1
  after one epoch on Reuters-8 (see that module).
* **Threads** (:func:`set_threads`): torch's intra-op and inter-op thread pools, set once per process.

Nothing here imports torch at module level (the settings mixin is imported by ``compare``'s config).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugaltext.errors import ConfigError
from frugaltext.settings import ValidatedSettings, setting

__all__ = [
    "BATCHINGS",
    "BF16_CPU_FLAGS",
    "FLAGS_OF_INTEREST",
    "FastPathSettings",
    "INFERENCE_ONLY_SETTINGS",
    "PRECISIONS",
    "QUANTIZATIONS",
    "autocast",
    "cpu_flags",
    "cpu_flags_of_interest",
    "cpu_model",
    "default_threads",
    "fast_path_details",
    "quantize_int8",
    "resolve_precision",
    "set_threads",
]

PRECISIONS = ("fp32", "bf16", "auto")
BATCHINGS = ("random", "grouped", "grouped-megabatch")
QUANTIZATIONS = ("none", "int8")
#: Settings of :class:`FastPathSettings` that change only how a trained model predicts (issue 12 item 5): a
#: ``compare`` variant differing from another method only in these reuses that method's trained model
#: (:func:`frugaltext.experiment.config.trained_by`). ``precision`` is not one: bf16 also trains in mixed
#: precision.
INFERENCE_ONLY_SETTINGS: tuple[str, ...] = ("inference_quantization", "int8_keep_fp32_linear")
#: CPU flags of native bf16 matrix arithmetic; ``auto`` picks bf16 when one is present.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
#: CPU flags that decide how fast the fast path runs (recorded beside every measurement): vector width, native
#: bf16 (``avx512_bf16``, AMX) and int8 dot products (VNNI, AMX).
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile")
CPUINFO = Path("/proc/cpuinfo")


def _checked_regex(value: Any) -> str | None:
    """``value`` as a regular expression string (None and ``"none"``/empty: None); ConfigError if invalid."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"setting 'int8_keep_fp32_linear': must be a regular expression string, got "
                          f"{type(value).__name__} {value!r}")
    try:
        re.compile(value)
    except re.error as err:
        raise ConfigError(f"setting 'int8_keep_fp32_linear': {value!r} is not a valid regular expression "
                          f"({err}); e.g. 'output\\.dense$'") from None
    return value


@dataclass(frozen=True)
class FastPathSettings(ValidatedSettings):
    """Settings every torch method shares (a mixin of their ``Settings``).

    Attributes
    ----------
    precision : {"fp32", "bf16", "auto"}
        Arithmetic of training and inference. ``bf16``: mixed precision (fp32 master weights, bf16 matrix
        products); ``auto``: bf16 where the CPU has ``amx_bf16``/``avx512_bf16`` (or the CUDA device supports
        bf16), else fp32 (:func:`resolve_precision`). Default fp32 (the presets use auto).
    batching : {"random", "grouped", "grouped-megabatch"}
        Training batches of random documents, or length-grouped (megabatches of 50 batches sorted by length,
        the batches then in random order): much less padding, still stochastic; ``grouped-megabatch``:
        transformers' ``LengthGroupedSampler`` order (each megabatch from its longest to its shortest
        batch). Default grouped (issue 12: on Reuters-8 at 128 tokens and batch 16 it computes 1.01 x the
        real tokens against 1.57 x for random batches); ``random`` keeps the old behaviour for comparison.
    inference_quantization : {"none", "int8"}
        Predict with dynamic int8 quantization of the Linear layers (:func:`quantize_int8`); the saved model
        stays fp32. A ``compare`` variant ``bert@int8: {inference_quantization: int8}`` measures it with the
        model ``bert`` trained (no second training).
    int8_keep_fp32_linear : str, optional
        With int8 inference: a regular expression (``re.search``) on Linear layer names that stay fp32
        (:func:`quantize_int8`'s ``keep_fp32_linear``), e.g. ``'output\\.dense$'`` for the FFN
        down-projections, which MPNet needs (all-int8 MPNet fell from 0.916 to 0.412 macro-F1 on Reuters-8;
        docs/early_exit.md). Inference-only: ``bert@int8-ffn: {inference_quantization: int8,
        int8_keep_fp32_linear: 'output\\.dense$'}`` reuses ``bert``'s model. Default None (every Linear int8).
    """

    precision: str = setting("fp32", choices=PRECISIONS)
    batching: str = setting("grouped", choices=BATCHINGS)
    inference_quantization: str = setting("none", choices=QUANTIZATIONS)
    int8_keep_fp32_linear: str | None = setting(None, convert=_checked_regex)


# --------------------------------------------------------------------------------------------------
# hardware
# --------------------------------------------------------------------------------------------------
@functools.cache
def _read_cpuinfo(path: str) -> tuple[str, frozenset[str]]:
    model, flags = "", frozenset()
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return model, flags


def cpu_flags(path: str | Path = CPUINFO) -> frozenset[str]:
    """The ``flags`` of the first CPU in ``/proc/cpuinfo`` (empty when it cannot be read, e.g. on macOS)."""
    return _read_cpuinfo(str(path))[1]


def cpu_model(path: str | Path = CPUINFO) -> str:
    """``model name`` of the first CPU in ``/proc/cpuinfo`` (else ``platform.processor()``)."""
    import platform

    return _read_cpuinfo(str(path))[0] or platform.processor() or platform.machine()


def cpu_flags_of_interest(path: str | Path = CPUINFO) -> list[str]:
    """Those of :data:`FLAGS_OF_INTEREST` that ``/proc/cpuinfo`` lists, in that order (empty where it cannot
    be read)."""
    flags = cpu_flags(path)
    return [f for f in FLAGS_OF_INTEREST if f in flags]


def _cuda_bf16() -> bool:
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        import torch
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_precision(precision: str) -> tuple[str, str]:
    """The precision to use for the setting ``precision``, and why.

    Parameters
    ----------
    precision : {"fp32", "bf16", "auto"}

    Returns
    -------
    (str, str)
        ``"fp32"`` or ``"bf16"``, and the reason, e.g. ``"auto: cpu flags amx_bf16, avx512_bf16"`` or
        ``"auto: no amx_bf16/avx512_bf16 in /proc/cpuinfo (bf16 would be emulated)"``.

    Raises
    ------
    ConfigError
        If ``precision`` is not one of fp32, bf16, auto.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision, "set"
    if _cuda_bf16():
        return "bf16", "auto: CUDA device supports bf16"
    present = [f for f in BF16_CPU_FLAGS if f in cpu_flags()]
    if present:
        return "bf16", f"auto: cpu flags {', '.join(present)}"
    return "fp32", f"auto: no {'/'.join(BF16_CPU_FLAGS)} in {CPUINFO} (bf16 would be emulated)"


@contextlib.contextmanager
def autocast(precision: str, device_type: str = "cpu") -> Iterator[None]:
    """``torch.autocast(device_type, dtype=torch.bfloat16)`` when ``precision`` is ``"bf16"``, else nothing
    (fp32 runs exactly the code it ran before this option existed)."""
    if precision != "bf16":
        yield
        return
    import torch

    with torch.autocast(device_type, dtype=torch.bfloat16):
        yield


# --------------------------------------------------------------------------------------------------
# int8
# --------------------------------------------------------------------------------------------------
def quantize_int8(model: Any, keep_fp32: tuple[str, ...] = (), keep_fp32_linear: str | None = None) -> Any:
    r"""A copy of ``model`` with every ``nn.Linear`` replaced by a dynamic int8 one (CPU inference only).

    Weights are quantized once (int8, per tensor), activations at run time per batch; embeddings, layer
    norms and LSTMs stay fp32. The original ``model`` is untouched (it is what gets saved).

    Why ``torch.ao.quantization.quantize_dynamic`` and not torchao: torch 2.13 marks ``torch.ao``
    deprecated in favour of torchao, but torchao 0.18 (the PyPI wheel) runs its int8 dynamic-activation
    config on CPU without fused kernels: on a 2-layer MiniLM-sized BERT, batch 16 x 128, one thread, it took
    15 s per batch against 0.73 s in fp32 and 0.47 s with ``quantize_dynamic`` (fbgemm kernels; an Intel Xeon
    with VNNI measured 103-115 docs/s against 47-53 in fp32 on MiniLM). The deprecation warnings are
    silenced here, and only here.

    Parameters
    ----------
    model : torch.nn.Module on CPU
    keep_fp32 : tuple of str
        Names of submodules left in fp32 (e.g. ``("nvdm",)``: TopicBERT's topic model reads its Linear
        layers' ``weight`` directly, which a quantized Linear does not have as a tensor).
    keep_fp32_linear : str, optional
        Regular expression (``re.search``) on ``nn.Linear`` module names to leave in fp32, e.g.
        ``r"output\.dense$"``: the FFN down-projection of BERT-style layers, whose input (after GELU) has the
        outlier activations that per-batch, per-tensor activation scales handle worst. On the
        all-mpnet-base-v2 early-exit model fine-tuned on Reuters-8 (150 validation documents), all-int8 fell
        from 0.916 to 0.412 final-exit macro-F1, while keeping ``output.dense`` fp32 gave 0.916 at 1.56x
        fp32's speed (all-int8: 1.83x); docs/early_exit.md.

    Returns
    -------
    torch.nn.Module in eval mode

    Raises
    ------
    ConfigError
        If ``keep_fp32_linear`` is not a valid regular expression or matches every Linear layer.
    """
    import torch

    quantized = copy.deepcopy(model).cpu().eval()
    kept = {name: quantized.get_submodule(name) for name in keep_fp32}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*")
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        spec: Any = {torch.nn.Linear}
        if keep_fp32_linear:
            try:
                pattern = re.compile(keep_fp32_linear)
            except re.error as err:
                raise ConfigError(
                    f"keep_fp32_linear: {keep_fp32_linear!r} is not a valid regular expression ({err})"
                ) from None
            linear = [n for n, m in quantized.named_modules() if isinstance(m, torch.nn.Linear)]
            spec = {n: torch.ao.quantization.default_dynamic_qconfig for n in linear if not pattern.search(n)}
            if not spec:
                raise ConfigError(
                    f"keep_fp32_linear: {keep_fp32_linear!r} matches all {len(linear)} Linear layers, so "
                    "nothing would be quantized; use inference_quantization 'none' instead"
                )
        quantized = torch.ao.quantization.quantize_dynamic(quantized, spec, dtype=torch.qint8)
    for name, module in kept.items():
        parent, _, leaf = name.rpartition(".")
        setattr(quantized.get_submodule(parent) if parent else quantized, leaf, module)
    return quantized.eval()


# --------------------------------------------------------------------------------------------------
# threads
# --------------------------------------------------------------------------------------------------
def default_threads() -> int:
    """Threads a command uses by default: ``$OMP_NUM_THREADS`` when set to a positive integer, else the
    CPUs this process may run on (``len(os.sched_getaffinity(0))``, which honours ``taskset`` and cgroup
    cpusets; ``os.cpu_count()`` where that call does not exist)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


_INTEROP: dict[str, int | None] = {"threads": None}


def set_threads(threads: int | None = None) -> dict[str, int]:
    """Set torch's intra-op threads to ``threads`` (default :func:`default_threads`) and, once per process,
    its inter-op threads to the same number.

    torch allows the inter-op pool to be sized only once and only before any inter-op work has run; a later
    call (a second command in the same process, or after torch already ran parallel work) keeps the size it
    has, without error.

    Returns
    -------
    dict
        ``{"torch_threads": intra-op threads now, "torch_interop_threads": inter-op threads now}``.

    Raises
    ------
    ConfigError
        If ``threads`` < 1.
    """
    import torch

    n = default_threads() if threads is None else int(threads)
    if n < 1:
        raise ConfigError(f"--threads must be at least 1, got {n}")
    torch.set_num_threads(n)
    if _INTEROP["threads"] is None:
        setter = getattr(torch, "set_num_interop_threads", None) or torch.set_interop_threads
        with contextlib.suppress(RuntimeError):  # already set, or parallel work already started
            setter(n)
        _INTEROP["threads"] = torch.get_num_interop_threads()
    return {"torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads()}


# --------------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------------
def fast_path_details(settings: Any) -> dict[str, Any]:
    """The fast-path keys of a results row (``notes``): what ran and why.

    Returns
    -------
    dict
        ``precision`` (fp32/bf16 actually used), ``precision_setting``, ``precision_reason`` (the deciding
        flags for auto), ``batching``, ``inference_quantization``, ``cpu_bf16_flags`` (those of
        :data:`BF16_CPU_FLAGS` present), and ``int8_keep_fp32_linear`` when int8 keeps some Linear layers
        fp32.
    """
    setting_value = getattr(settings, "precision", "fp32")
    precision, reason = resolve_precision(setting_value)
    details = {
        "precision": precision,
        "precision_setting": setting_value,
        "precision_reason": reason,
        "batching": getattr(settings, "batching", "random"),
        "inference_quantization": getattr(settings, "inference_quantization", "none"),
        "cpu_bf16_flags": [f for f in BF16_CPU_FLAGS if f in cpu_flags()],
    }
    keep = getattr(settings, "int8_keep_fp32_linear", None)
    if keep and details["inference_quantization"] == "int8":
        details["int8_keep_fp32_linear"] = keep
    return details
