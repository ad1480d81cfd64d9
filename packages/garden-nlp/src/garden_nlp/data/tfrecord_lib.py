"""TFRecord helpers of the NLP pipelines: building tf.Examples, atomic writes, decoding.

Writing:

- `int_feature`, `float_feature`, `bytes_feature`: one `tf.train.Feature` from values.
- `make_example`: a `tf.train.Example` from a mapping of names to values (lists of ints,
  floats, bytes or strings, NumPy arrays, or ready `tf.train.Feature`s).
- `AtomicTFRecordWriter` / `write_examples`: write records under a hidden temporary name
  and rename it into place only once every record is written, so a crash or an error
  never leaves a partial file under the name a later run reads.

Reading:

- `pick_dataset_fn`: the raw-record dataset for a config's `file_type`.
- `decode_example`: parses one serialized tf.Example and casts int64 features to int32,
  as every Model Garden NLP loader does.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from garden_core.config import ConfigError
from garden_nlp.configs.data import FILE_TYPES
from garden_orbit.utils import atomic_write

FeatureValue = Any
"""A feature's values: ints, floats, bytes or strings (one, a list or an array)."""


def _as_list(values: FeatureValue) -> list:
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist()
    if isinstance(values, (str, bytes, int, float, np.generic)):
        return [values.item() if isinstance(values, np.generic) else values]
    return list(values)


def int_feature(values: FeatureValue) -> tf.train.Feature:
    """An int64 feature from an int or a sequence of ints."""
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in _as_list(values)]))


def float_feature(values: FeatureValue) -> tf.train.Feature:
    """A float feature from a number or a sequence of numbers."""
    return tf.train.Feature(
        float_list=tf.train.FloatList(value=[float(v) for v in _as_list(values)])
    )


def bytes_feature(values: FeatureValue) -> tf.train.Feature:
    """A bytes feature from bytes or strings (UTF-8 encoded), one or a sequence."""
    items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in _as_list(values)]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=items))


def _feature(name: str, values: FeatureValue) -> tf.train.Feature:
    if isinstance(values, tf.train.Feature):
        return values
    items = _as_list(values)
    if not items:
        raise ValueError(
            f"feature {name!r} has no values: give a typed tf.train.Feature for an empty one"
        )
    if all(isinstance(v, (str, bytes)) for v in items):
        return bytes_feature(items)
    if all(isinstance(v, (bool, int, np.integer)) for v in items):
        return int_feature(items)
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in items):
        return float_feature(items)
    kinds = sorted({type(v).__name__ for v in items})
    raise ValueError(
        f"feature {name!r} mixes or holds unsupported value types ({', '.join(kinds)}); "
        "give ints, floats, or bytes/strings"
    )


def make_example(features: Mapping[str, FeatureValue]) -> tf.train.Example:
    """Builds a tf.Example; each value's type picks int64, float or bytes.

    Args:
        features: Feature names to values: ints (int64 list), floats (float list; a mix
            of ints and floats is a float list), bytes or strings (bytes list), as single
            values, sequences or NumPy arrays, or ready `tf.train.Feature`s.

    Raises:
        ValueError: If a value is empty or of an unsupported type, naming the feature.
    """
    return tf.train.Example(
        features=tf.train.Features(
            feature={name: _feature(name, values) for name, values in features.items()}
        )
    )


class AtomicTFRecordWriter:
    """Writes a TFRecord file that appears under its name only when complete.

    Use it as a context manager: records go to a hidden temporary file beside `path`,
    renamed to `path` when the block ends without an error; on an error the temporary
    file is removed and `path` is left as it was.

    ```python
    with AtomicTFRecordWriter("/data/train.tfrecord") as writer:
        for features in all_features:
            writer.write(make_example(features))
    ```

    Args:
        path: The file to write; its folder is created if missing.
        compression_type: None, `""`, `"GZIP"` or `"ZLIB"`.
    """

    def __init__(self, path: str, compression_type: str | None = None):
        if not path or path.endswith(("/", "\\")):
            raise ValueError(f"TFRecord output path {path!r} must name a file")
        self.path = path
        self.num_records = 0
        self._compression_type = compression_type
        self._target = atomic_write.atomic_path(path)
        self._writer: tf.io.TFRecordWriter | None = None

    def __enter__(self) -> AtomicTFRecordWriter:
        temporary = self._target.__enter__()
        self._writer = tf.io.TFRecordWriter(temporary, options=self._compression_type)
        return self

    def write(self, record: tf.train.Example | bytes) -> None:
        """Writes one tf.Example (or serialized record)."""
        if self._writer is None:
            raise RuntimeError("AtomicTFRecordWriter.write called outside its `with` block")
        if isinstance(record, tf.train.Example):
            record = record.SerializeToString()
        self._writer.write(record)
        self.num_records += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._target.__exit__(exc_type, exc, traceback)


def write_examples(
    path: str,
    examples: Iterable[tf.train.Example | Mapping[str, FeatureValue]],
    compression_type: str | None = None,
) -> int:
    """Writes tf.Examples (or feature mappings, see `make_example`) to `path` atomically.

    Args:
        path: The TFRecord file to write.
        examples: tf.Examples, or mappings of feature names to values.
        compression_type: None, `""`, `"GZIP"` or `"ZLIB"`.

    Returns:
        The number of records written.
    """
    with AtomicTFRecordWriter(path, compression_type) as writer:
        for example in examples:
            if not isinstance(example, tf.train.Example):
                example = make_example(example)
            writer.write(example)
    return writer.num_records


def pick_dataset_fn(file_type: str, field: str = "file_type") -> Callable[[Any], tf.data.Dataset]:
    """The dataset of raw records of one file, for `file_type` `tfrecord[_compressed]`.

    Args:
        file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
        field: The config field named in the error.

    Raises:
        ConfigError: For another `file_type`.
    """
    if file_type == "tfrecord":
        return tf.data.TFRecordDataset
    if file_type == "tfrecord_compressed":
        return lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP")
    raise ConfigError(f"`{field}` = {file_type!r}: expected one of {', '.join(FILE_TYPES)}")


def decode_example(
    record: tf.Tensor, name_to_features: Mapping[str, tf.io.FixedLenFeature]
) -> dict[str, tf.Tensor]:
    """Parses one serialized tf.Example; int64 features come back as int32.

    Args:
        record: A scalar string tensor.
        name_to_features: The features to parse (`tf.io.parse_single_example` specs).
    """
    example = tf.io.parse_single_example(record, dict(name_to_features))
    return {
        name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
        for name, value in example.items()
    }
