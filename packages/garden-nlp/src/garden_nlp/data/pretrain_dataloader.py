"""Input pipeline of BERT pretraining from TFRecords with static masks.

`BertPretrainDataLoader` reads the tf.Examples of original BERT's
`create_pretraining_data.py` (see `BertPretrainDataConfig`) and yields batches of
`(features, labels)`:

- features: `input_word_ids`, `input_mask`, `input_type_ids` (int32 `[batch, seq_length]`),
  `masked_lm_positions` (int32 `[batch, max_predictions_per_seq]`) and, with
  `use_position_id`, `position_ids`;
- labels: `masked_lm_ids` (int32) and `masked_lm_weights` (float32, 0 at padding), both
  `[batch, max_predictions_per_seq]`, and, with `use_next_sentence_label`,
  `next_sentence_labels` (int32 `[batch]`: 0 when segment B follows A, 1 when random).
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from garden_core.data import InputReader
from garden_nlp.configs.data import BertPretrainDataConfig
from garden_nlp.data import tfrecord_lib

PretrainBatch = tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]


class BertPretrainDataLoader:
    """Reads masked-LM pretraining examples from TFRecords.

    Args:
        params: The `BertPretrainDataConfig`.

    Raises:
        ConfigError: For an unknown `file_type`.
    """

    def __init__(self, params: BertPretrainDataConfig):
        self._params = params
        self._dataset_fn = tfrecord_lib.pick_dataset_fn(params.file_type)

    def name_to_features_spec(self) -> dict[str, tf.io.FixedLenFeature]:
        """The tf.Example features read."""
        params = self._params
        length, predictions = params.seq_length, params.max_predictions_per_seq
        word_ids, type_ids = (
            ("input_word_ids", "input_type_ids")
            if params.use_v2_feature_names
            else ("input_ids", "segment_ids")
        )
        spec = {
            word_ids: tf.io.FixedLenFeature([length], tf.int64),
            "input_mask": tf.io.FixedLenFeature([length], tf.int64),
            type_ids: tf.io.FixedLenFeature([length], tf.int64),
            "masked_lm_positions": tf.io.FixedLenFeature([predictions], tf.int64),
            "masked_lm_ids": tf.io.FixedLenFeature([predictions], tf.int64),
            "masked_lm_weights": tf.io.FixedLenFeature([predictions], tf.float32),
        }
        if params.use_next_sentence_label:
            spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
        if params.use_position_id:
            spec["position_ids"] = tf.io.FixedLenFeature([length], tf.int64)
        return spec

    def _decode(self, record: tf.Tensor) -> dict[str, tf.Tensor]:
        return tfrecord_lib.decode_example(record, self.name_to_features_spec())

    def _parse(self, record: Mapping[str, tf.Tensor]) -> PretrainBatch:
        params = self._params
        v2 = params.use_v2_feature_names
        features = {
            "input_word_ids": record["input_word_ids" if v2 else "input_ids"],
            "input_mask": record["input_mask"],
            "input_type_ids": record["input_type_ids" if v2 else "segment_ids"],
            "masked_lm_positions": record["masked_lm_positions"],
        }
        if params.use_position_id:
            features["position_ids"] = record["position_ids"]
        labels = {
            "masked_lm_ids": record["masked_lm_ids"],
            "masked_lm_weights": record["masked_lm_weights"],
        }
        if params.use_next_sentence_label:
            labels["next_sentence_labels"] = tf.reshape(record["next_sentence_labels"], [])
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
