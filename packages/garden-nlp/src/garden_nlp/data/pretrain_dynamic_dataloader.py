"""Input pipeline of BERT pretraining from TFRecords of varying lengths, batched by length.

`BertPretrainDynamicDataLoader` is Model Garden's `PretrainingDynamicDataLoader`
(`bert/pretraining_dynamic`): it reads the tf.Examples of `BertPretrainDataLoader` with
every feature of any length (see `BertPretrainDynamicDataConfig`), drops trailing `[PAD]`
word ids, puts each example into the first of `seq_bucket_lengths` that holds it and
batches examples of one bucket at a time, so short sequences are not padded to the
longest. Batches are `(features, labels)` laid out as `BertPretrainDataLoader`'s:

- features: `input_word_ids`, `input_mask`, `input_type_ids` (int32 `[batch, bucket]`,
  zero-padded; `input_mask` is 0 at padding), `masked_lm_positions` (int32
  `[batch, predictions]`) and, with `use_position_id`, `position_ids`;
- labels: `masked_lm_ids` (int32) and `masked_lm_weights` (float32), zero-padded to the
  longest masked-LM features of the batch, and, with `use_next_sentence_label`,
  `next_sentence_labels` (int32 `[batch]`).

Unlike Model Garden, which requires every example of a bucket to have masked-LM features
of one length, examples of a batch may differ there: shorter ones are padded with weight 0.
"""

from __future__ import annotations

import tensorflow as tf

from garden_core.config import ConfigError
from garden_core.data import InputReader
from garden_nlp.configs.data import BertPretrainDynamicDataConfig
from garden_nlp.data import tfrecord_lib
from garden_nlp.data.pretrain_dataloader import PretrainBatch

_MASK_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")


class BertPretrainDynamicDataLoader:
    """Reads masked-LM pretraining examples of varying lengths into length-bucketed batches.

    Args:
        params: The `BertPretrainDynamicDataConfig`.

    Raises:
        ConfigError: For an invalid `seq_bucket_lengths` (empty, not increasing, or beyond
            `seq_length`), an unknown `file_type`, or a TFDS source (records must be
            TFRecords of tf.Examples).
    """

    def __init__(self, params: BertPretrainDynamicDataConfig):
        params.validate()
        if params.tfds_name:
            raise ConfigError(
                f"`tfds_name` = {params.tfds_name!r}: dynamic-length pretraining reads "
                "TFRecords of tf.Examples; set `input_path` instead"
            )
        self._params = params
        self._dataset_fn = tfrecord_lib.pick_dataset_fn(params.file_type)
        v2 = params.use_v2_feature_names
        self._word_ids_key = "input_word_ids" if v2 else "input_ids"
        self._type_ids_key = "input_type_ids" if v2 else "segment_ids"
        self._token_keys = [self._word_ids_key, "input_mask", self._type_ids_key]
        if params.use_position_id:
            self._token_keys.append("position_ids")

    def name_to_features_spec(self) -> dict[str, tf.io.VarLenFeature | tf.io.FixedLenFeature]:
        """The tf.Example features read."""
        spec: dict[str, tf.io.VarLenFeature | tf.io.FixedLenFeature] = {
            key: tf.io.VarLenFeature(tf.int64) for key in self._token_keys
        }
        spec["masked_lm_positions"] = tf.io.VarLenFeature(tf.int64)
        spec["masked_lm_ids"] = tf.io.VarLenFeature(tf.int64)
        spec["masked_lm_weights"] = tf.io.VarLenFeature(tf.float32)
        if self._params.use_next_sentence_label:
            spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
        return spec

    def _decode(self, record: tf.Tensor) -> dict[str, tf.Tensor]:
        example = tf.io.parse_single_example(record, self.name_to_features_spec())
        example = {
            name: tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value
            for name, value in example.items()
        }
        example = {
            name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
            for name, value in example.items()
        }
        word_ids = example[self._word_ids_key]
        # The real length ends at the last non-[PAD] word id; trailing padding is dropped.
        positions = tf.range(1, tf.size(word_ids) + 1)
        length = tf.reduce_max(tf.concat([[0], tf.where(word_ids != 0, positions, 0)], 0))
        longest = self._params.seq_bucket_lengths[-1]
        checks = [
            tf.debugging.assert_less_equal(
                length,
                longest,
                message=(
                    f"a record holds more tokens than the last of `seq_bucket_lengths` "
                    f"({longest}); add a longer bucket (up to `seq_length`)"
                ),
            )
        ]
        for key in self._token_keys[1:]:
            checks.append(
                tf.debugging.assert_equal(
                    tf.size(example[key]),
                    tf.size(word_ids),
                    message=f"feature `{key}` and `{self._word_ids_key}` differ in length",
                )
            )
        with tf.control_dependencies(checks):
            for key in self._token_keys:
                example[key] = example[key][:length]
        return example

    def _parse(self, record: dict[str, tf.Tensor]) -> PretrainBatch:
        params = self._params
        features = {
            "input_word_ids": record[self._word_ids_key],
            "input_mask": record["input_mask"],
            "input_type_ids": record[self._type_ids_key],
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

    def _bucketize_and_batch(
        self, dataset: tf.data.Dataset, input_context: tf.distribute.InputContext | None
    ) -> tf.data.Dataset:
        params = self._params
        batch_size = params.global_batch_size
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(batch_size)
        bucket_lengths = tf.constant(params.seq_bucket_lengths, tf.int32)

        def bucket_of(features: dict[str, tf.Tensor], labels: dict[str, tf.Tensor]) -> tf.Tensor:
            del labels
            length = tf.shape(features["input_word_ids"])[0]
            bucket = tf.searchsorted(bucket_lengths, tf.reshape(length, [1]), side="left")[0]
            return tf.cast(bucket, tf.int64)

        def batch_bucket(bucket: tf.Tensor, window: tf.data.Dataset) -> tf.data.Dataset:
            length = tf.reshape(tf.cast(tf.gather(bucket_lengths, bucket), tf.int64), [1])
            features, labels = window.element_spec
            shapes = (
                {name: [-1] if name in _MASK_FEATURES else length for name in features},
                {name: [-1] if name in _MASK_FEATURES else [] for name in labels},
            )
            return window.padded_batch(
                batch_size, padded_shapes=shapes, drop_remainder=params.drop_remainder
            )

        dataset = dataset.group_by_window(bucket_of, batch_bucket, window_size=batch_size)
        replicas = input_context.num_replicas_in_sync if input_context is not None else 1
        if replicas > 1:
            # All replicas of a step get batches of one bucket: group consecutive batches.
            dataset = dataset.group_by_window(
                lambda features, labels: tf.cast(tf.shape(features["input_word_ids"])[1], tf.int64),
                lambda length, window: window,
                window_size=replicas,
            )
        return dataset

    def load(self, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """The length-bucketed dataset of `(features, labels)` for one input pipeline."""
        reader = InputReader(
            self._params,
            dataset_fn=self._dataset_fn,
            decoder_fn=self._decode,
            parser_fn=self._parse,
            transform_and_batch_fn=self._bucketize_and_batch,
        )
        return reader.read(input_context)
