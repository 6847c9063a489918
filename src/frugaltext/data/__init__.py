"""frugaltext.data: reading and checking datasets, and the in-memory split types.

``load_data`` turns an embedded dataset name, a directory, a single file or a saved ``datasets.DatasetDict``
into a :class:`TextClassificationData`; ``embedded_datasets`` lists the datasets shipped in the package.
``read_texts`` / ``iter_texts`` read (stream) unlabelled documents for prediction and transfer sets, and
``read_records`` / ``iter_records`` the raw rows of any data file; all of them parse through
:mod:`frugaltext.data.formats` (one convention for lines, quoting, gzip and UTF-8).

Modules: ``formats`` (file formats, streaming), ``texts`` (unlabelled documents), ``sources`` (embedded
datasets, directories, saved ``DatasetDict``s), ``labels`` (field checks, label parsing), ``splits`` (the
validation carve), ``readers`` (``load_data``, tying them together), ``dataset`` (the split types).
The torch collator lives in :mod:`frugaltext.data.collate` (not imported here, so that reading data does not
import torch).
"""

from frugaltext.data.dataset import Split, TextClassificationData
from frugaltext.data.formats import Record, iter_records, read_records
from frugaltext.data.readers import SPLIT_ALIASES, SUPPORTED_EXTENSIONS, embedded_datasets, load_data
from frugaltext.data.texts import Documents, iter_texts, read_texts

__all__ = [
    "SPLIT_ALIASES",
    "SUPPORTED_EXTENSIONS",
    "Documents",
    "Record",
    "Split",
    "TextClassificationData",
    "embedded_datasets",
    "iter_records",
    "iter_texts",
    "load_data",
    "read_records",
    "read_texts",
]
