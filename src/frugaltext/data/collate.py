"""The one collator and the tokenisation helper shared by every torch method.

Every torch model in frugaltext takes ``input_ids``, ``attention_mask`` and optional extra keys (``bow`` for
TopicBERT, ``teacher_logits`` for distillation). :class:`PadCollator` pads the token keys and stacks every
other key, so one collator serves all models and the transformers ``Trainer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from frugaltext.errors import ConfigError

TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class EncodedDataset(torch.utils.data.Dataset):
    """A list of feature dicts (``input_ids`` list of int, ``labels``, extra keys) as a torch Dataset."""

    def __init__(self, features: list[dict[str, Any]]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.features[index]


class PadCollator:
    """Pad token keys to the longest sequence in the batch (dynamic padding) or to ``pad_to``; stack the rest.

    Parameters
    ----------
    pad_token_id : int
        Id written into padded ``input_ids`` positions (``attention_mask`` is padded with 0).
    pad_to : int, optional
        Fixed length for every batch (the TopicBERT paper pads every input to N); ``None`` pads each batch
        only to its longest member (the usual practice, and faster).

    Returns (on call)
    -----------------
    dict of Tensor
        ``input_ids``/``attention_mask``/``token_type_ids`` of shape ``(batch_size, seq_len)`` long;
        ``labels`` of shape ``(batch_size,)`` long (single-label) or ``(batch_size, num_labels)`` float
        (multi-label); other keys stacked as float32 (floats) or long (ints).
    """

    def __init__(self, pad_token_id: int = 0, pad_to: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to = pad_to

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate ``features`` (one dict per example) into one padded batch of tensors (see the class
        docstring for the keys, shapes and dtypes).

        Raises
        ------
        ConfigError
            If ``pad_to`` is shorter than the longest sequence.
        """
        batch: dict[str, torch.Tensor] = {}
        lengths = [len(f["input_ids"]) for f in features]
        seq_len = max(lengths) if self.pad_to is None else self.pad_to
        if seq_len < max(lengths):
            raise ConfigError(f"pad_to={self.pad_to} is shorter than a sequence of {max(lengths)} tokens")
        for key in TOKEN_KEYS:
            if key not in features[0]:
                continue
            pad_value = self.pad_token_id if key == "input_ids" else 0
            out = torch.full((len(features), seq_len), pad_value, dtype=torch.long)
            for row, feature in enumerate(features):
                values = feature[key]
                out[row, : len(values)] = torch.as_tensor(values, dtype=torch.long)
            batch[key] = out
        if "attention_mask" not in batch:
            mask = torch.zeros((len(features), seq_len), dtype=torch.long)
            for row, n in enumerate(lengths):
                mask[row, :n] = 1
            batch["attention_mask"] = mask
        for key in features[0]:
            if key in TOKEN_KEYS:
                continue
            values = [f[key] for f in features]
            first = values[0]
            if isinstance(first, torch.Tensor):
                batch[key] = torch.stack(values)
            else:
                array = np.asarray(values)
                if array.dtype.kind == "f" or (key == "labels" and array.ndim == 2):
                    batch[key] = torch.as_tensor(array, dtype=torch.float32)
                else:
                    batch[key] = torch.as_tensor(array, dtype=torch.long)
        return batch


def encode_texts(
    tokenizer: Any, texts: Sequence[str], max_length: int, truncation: str = "head"
) -> list[list[int]]:
    """Tokenise ``texts`` to token-id lists of at most ``max_length`` tokens (special tokens included).

    Parameters
    ----------
    tokenizer : transformers tokenizer (fast)
    texts : sequence of str
    max_length : int
        Maximum number of tokens per document, [CLS] and [SEP] included (BERT's N).
    truncation : {"head", "tail"}
        Keep the first (head) or the last (tail) tokens of long documents (Sun et al. 2019 compare both).

    Raises
    ------
    ConfigError
        If ``truncation`` is not head or tail, or ``max_length`` < 2.
    """
    if truncation not in ("head", "tail"):
        raise ConfigError(f"truncation must be 'head' or 'tail', got {truncation!r}")
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2 (room for [CLS] and [SEP]), got {max_length}")
    previous = tokenizer.truncation_side
    tokenizer.truncation_side = "right" if truncation == "head" else "left"
    try:
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    finally:
        tokenizer.truncation_side = previous
    return encoded["input_ids"]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first), to cut padding at inference.

    Returns a list of index arrays; concatenated they are a permutation of ``range(len(lengths))``.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
