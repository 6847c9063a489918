"""frugaltext.data: reading and checking datasets, and the in-memory split types.

``load_data`` turns an embedded dataset name, a directory, a single file or a saved ``datasets.DatasetDict``
into a :class:`TextClassificationData`; ``embedded_datasets`` lists the datasets shipped in the package.
The torch collator lives in :mod:`frugaltext.data.collate` (not imported here, so that reading data does not
import torch).
"""

from frugaltext.data.dataset import Split, TextClassificationData
from frugaltext.data.readers import SPLIT_ALIASES, SUPPORTED_EXTENSIONS, embedded_datasets, load_data

__all__ = [
    "SPLIT_ALIASES",
    "SUPPORTED_EXTENSIONS",
    "Split",
    "TextClassificationData",
    "embedded_datasets",
    "load_data",
]
