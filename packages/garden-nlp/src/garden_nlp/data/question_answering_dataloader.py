"""Input pipeline of SQuAD-style question answering (span prediction).

`QuestionAnsweringDataLoader` reads the TFRecords of features that
`garden_nlp.data.squad_features` writes (see `QADataConfig`) and yields batches of
`(features, labels)`:

- features: `input_word_ids`, `input_mask`, `input_type_ids` (int32 `[batch, seq_length]`)
  and, for evaluation, `unique_ids` (int32 `[batch]`), which tie each window's logits back
  to its feature for `squad_postprocess.postprocess_output`;
- labels: for training `start_positions` and `end_positions` (int32 `[batch]`, token
  indices in the window; 0, the `[CLS]` token, when the answer is outside the window or
  the question has none); for evaluation an empty dict.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from garden_core.data import InputReader
from garden_nlp.configs.data import QADataConfig
from garden_nlp.data import tfrecord_lib

_KEY_MAPPING = {"input_ids": "input_word_ids", "segment_ids": "input_type_ids"}
_LABELS = ("start_positions", "end_positions")


class QuestionAnsweringDataLoader:
    """Reads question-answering features from TFRecords.

    Args:
        params: The `QADataConfig`; `input_path` names the TFRecord feature files.

    Raises:
        ConfigError: For an unknown `file_type`.
    """

    def __init__(self, params: QADataConfig):
        self._params = params
        self._dataset_fn = tfrecord_lib.pick_dataset_fn(params.file_type)

    def name_to_features_spec(self) -> dict[str, tf.io.FixedLenFeature]:
        """The tf.Example features read."""
        length = self._params.seq_length
        spec = {
            "input_ids": tf.io.FixedLenFeature([length], tf.int64),
            "input_mask": tf.io.FixedLenFeature([length], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([length], tf.int64),
        }
        if self._params.is_training:
            spec["start_positions"] = tf.io.FixedLenFeature([], tf.int64)
            spec["end_positions"] = tf.io.FixedLenFeature([], tf.int64)
        else:
            spec["unique_ids"] = tf.io.FixedLenFeature([], tf.int64)
        return spec

    def _decode(self, record: tf.Tensor) -> dict[str, tf.Tensor]:
        return tfrecord_lib.decode_example(record, self.name_to_features_spec())

    def _parse(
        self, record: Mapping[str, tf.Tensor]
    ) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        features, labels = {}, {}
        for name, value in record.items():
            if name in _LABELS:
                labels[name] = value
            else:
                features[_KEY_MAPPING.get(name, name)] = value
        return features, labels

    def load(self, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """The batched dataset of `(features, labels)` for one input pipeline."""
        reader = InputReader(
            self._params,
            dataset_fn=self._dataset_fn,
            decoder_fn=self._decode,
            parser_fn=self._parse,
        )
        return reader.read(input_context)
