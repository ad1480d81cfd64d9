"""Input pipelines for Garden tasks: `DataConfig` in, batched `tf.data.Dataset` out.

- `InputReader`: Model Garden's reader (file patterns or TFDS, per-worker sharding,
  shuffling, caching, decode / parse / batch hooks).
- `match_files`: `input_path` patterns to files; `InputNotFoundError` when one matches none.
- `find_corrupt_files` / `CorruptRecordError`: which TFRecord files a `DataLossError` came
  from, since TensorFlow's message gives only a byte offset.

Importing this package imports TensorFlow; `tensorflow_datasets` is imported only when a
config names a TFDS dataset.
"""

from garden_core.data.corrupt_files import (
    CorruptRecordError,
    explain_data_error,
    find_corrupt_files,
)
from garden_core.data.files import InputNotFoundError, match_files
from garden_core.data.input_reader import InputReader

__all__ = [
    "CorruptRecordError",
    "InputNotFoundError",
    "InputReader",
    "explain_data_error",
    "find_corrupt_files",
    "match_files",
]
