"""Dynamic-length pretraining input: records of varying lengths batched by length buckets."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from garden_core.config import ConfigError
from garden_nlp.configs.data import BertPretrainDynamicDataConfig
from garden_nlp.data import tfrecord_lib
from garden_nlp.data.pretrain_dynamic_dataloader import BertPretrainDynamicDataLoader

CLS, SEP = 2, 3
BUCKETS = (4, 8, 12)


def make_record(index: int, length: int, padded_to: int | None = None) -> dict:
    """A record of `length` real tokens, its word ids unique to `index`; zero-padded on."""
    pad = (padded_to or length) - length
    middle = [10 + index * 20 + i for i in range(length - 2)]
    masked = 1 + index % 3  # One to three predictions: batches mix mask lengths.
    return {
        "input_ids": [CLS, *middle, SEP] + [0] * pad,
        "input_mask": [1] * length + [0] * pad,
        "segment_ids": [0] * (length // 2) + [1] * (length - length // 2) + [0] * pad,
        "masked_lm_positions": [1 + i % (length - 2) for i in range(masked)],
        "masked_lm_ids": [500 + index * 10 + i for i in range(masked)],
        "masked_lm_weights": [1.0] * masked,
        "next_sentence_labels": index % 2,
    }


# Lengths 3..12 over the three buckets; the last four are static records padded to 12.
LENGTHS = [3, 4, 5, 8, 9, 12, 6, 3, 11, 7, 4, 10, 5, 9, 8]
RECORDS = [
    make_record(i, n, padded_to=12 if i >= len(LENGTHS) - 4 else None)
    for i, n in enumerate(LENGTHS)
]


@pytest.fixture
def record_file(tmp_path) -> str:
    path = str(tmp_path / "dynamic.tfrecord")
    tfrecord_lib.write_examples(path, RECORDS)
    return path


def config(input_path: str, **overrides) -> BertPretrainDynamicDataConfig:
    values = {
        # Model Garden's default for this data is `deterministic: false`; the checks below
        # read records in file order.
        "deterministic": True,
        "input_path": input_path,
        "global_batch_size": 3,
        "is_training": False,
        "drop_remainder": False,
        "seq_bucket_lengths": BUCKETS,
        "seq_length": 12,
        **overrides,
    }
    return BertPretrainDynamicDataConfig(**values)


def bucket_of(length: int) -> int:
    return next(b for b in BUCKETS if b >= length)


def test_model_garden_defaults():
    params = BertPretrainDynamicDataConfig()
    assert params.is_training is True
    assert params.deterministic is False
    assert params.global_batch_size == 512
    assert params.seq_bucket_lengths == (128, 256, 384, 512)
    assert params.seq_bucket_window_scale == 8
    assert params.use_next_sentence_label
    assert not params.use_position_id
    # Model Garden's tf.data-service fields load at their defaults; other values do not.
    loaded = BertPretrainDynamicDataConfig.from_dict(
        {
            "tf_data_service_job_name": "bert_pretrain",
            "enable_round_robin_tf_data_service": False,
            "enable_tf_data_service": False,
            "seq_bucket_lengths": [128, 256, 384, 512],
        }
    )
    assert loaded == params
    for key, value in [
        ("enable_round_robin_tf_data_service", True),
        ("tf_data_service_job_name", "other"),
    ]:
        with pytest.raises(ConfigError, match=key):
            BertPretrainDynamicDataConfig.from_dict({key: value})


def test_evaluation_batches_are_bucket_shaped_and_keep_every_record_once(record_file):
    seen = []
    for features, labels in BertPretrainDynamicDataLoader(config(record_file)).load():
        ids = features["input_word_ids"].numpy()
        batch, width = ids.shape
        assert width in BUCKETS
        assert 1 <= batch <= 3
        predictions = features["masked_lm_positions"].shape[1]
        for name in ("input_mask", "input_type_ids"):
            assert features[name].shape == (batch, width)
        for name in ("masked_lm_ids", "masked_lm_weights"):
            assert labels[name].shape == (batch, predictions)
        assert labels["next_sentence_labels"].shape == (batch,)
        for row in range(batch):
            index = (int(ids[row, 1]) - 10) // 20  # The record's first middle token.
            record, length = RECORDS[index], LENGTHS[index]
            assert width == bucket_of(length)
            seen.append(index)
            # Values are the record's; padding is zeros with mask 0.
            for name, key in [
                ("input_word_ids", "input_ids"),
                ("input_mask", "input_mask"),
                ("input_type_ids", "segment_ids"),
            ]:
                values = features[name].numpy()[row]
                np.testing.assert_array_equal(values[:length], record[key][:length])
                np.testing.assert_array_equal(values[length:], 0)
            masked = len(record["masked_lm_ids"])
            np.testing.assert_array_equal(
                features["masked_lm_positions"].numpy()[row][:masked],
                record["masked_lm_positions"],
            )
            np.testing.assert_array_equal(
                labels["masked_lm_ids"].numpy()[row][:masked], record["masked_lm_ids"]
            )
            weights = labels["masked_lm_weights"].numpy()[row]
            np.testing.assert_array_equal(weights[:masked], 1.0)
            np.testing.assert_array_equal(weights[masked:], 0.0)
            np.testing.assert_array_equal(features["masked_lm_positions"].numpy()[row][masked:], 0)
            assert labels["next_sentence_labels"].numpy()[row] == index % 2
    assert sorted(seen) == list(range(len(RECORDS)))


def test_training_batches_are_full_and_dtypes_match_the_static_loader(record_file):
    params = config(record_file, is_training=True, drop_remainder=True, seed=1)
    dataset = BertPretrainDynamicDataLoader(params).load()
    widths = set()
    for features, labels in dataset.take(12):
        assert features["input_word_ids"].shape[0] == 3
        widths.add(features["input_word_ids"].shape[1])
        for name in ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions"):
            assert features[name].dtype == tf.int32
        assert labels["masked_lm_ids"].dtype == tf.int32
        assert labels["masked_lm_weights"].dtype == tf.float32
        assert labels["next_sentence_labels"].dtype == tf.int32
    assert widths == set(BUCKETS)


def test_replicas_of_a_step_get_batches_of_one_bucket(record_file):
    params = config(record_file, global_batch_size=4)
    context = tf.distribute.InputContext(
        num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2
    )
    batches = list(BertPretrainDynamicDataLoader(params).load(context))
    assert sum(int(f["input_word_ids"].shape[0]) for f, _ in batches) == len(RECORDS)
    assert all(f["input_word_ids"].shape[0] <= 2 for f, _ in batches)
    widths = [int(f["input_word_ids"].shape[1]) for f, _ in batches]
    # Buckets of 4, 6 and 5 records make 2, 3 and 3 batches of at most 2: a pair of batches
    # of one width per bucket, then the odd batches of the last two left over at the end.
    pairs, leftovers, i = [], [], 0
    while i < len(widths):
        if not leftovers and i + 1 < len(widths) and widths[i] == widths[i + 1]:
            pairs.append(widths[i])
            i += 2
        else:
            leftovers.append(widths[i])
            i += 1
    assert sorted(pairs) == [4, 8, 12]
    assert sorted(leftovers) == [8, 12]


def test_v2_names_and_position_ids(tmp_path):
    path = str(tmp_path / "v2.tfrecord")
    records = []
    for i, n in enumerate([3, 6]):
        record = make_record(i, n)
        record["input_word_ids"] = record.pop("input_ids")
        record["input_type_ids"] = record.pop("segment_ids")
        record["position_ids"] = list(range(n))
        records.append(record)
    tfrecord_lib.write_examples(path, records)
    params = config(path, use_v2_feature_names=True, use_position_id=True, seq_bucket_lengths=(8,))
    features, _ = next(iter(BertPretrainDynamicDataLoader(params).load()))
    assert features["input_word_ids"].shape == (2, 8)
    np.testing.assert_array_equal(features["position_ids"][1], [0, 1, 2, 3, 4, 5, 0, 0])


def test_a_record_longer_than_the_last_bucket_is_an_error(record_file):
    params = config(record_file, seq_bucket_lengths=(4, 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="seq_bucket_lengths"):
        list(BertPretrainDynamicDataLoader(params).load())


@pytest.mark.parametrize(
    ("buckets", "message"),
    [
        ((), "empty"),
        ((8, 4, 12), "strictly increase"),
        ((4, 4), "strictly increase"),
        ((4, 16), "longer than `seq_length`"),
        ((0, 4), "at least 1"),
    ],
)
def test_bad_bucket_lengths_are_named(record_file, buckets, message):
    params = config(record_file, seq_bucket_lengths=buckets)
    with pytest.raises(ConfigError, match=f"seq_bucket_lengths.*{message}"):
        BertPretrainDynamicDataLoader(params)
    with pytest.raises(ConfigError, match=f"train_data.seq_bucket_lengths.*{message}"):
        params.validate("task.train_data")


def test_token_features_of_different_lengths_are_an_error(tmp_path):
    path = str(tmp_path / "uneven.tfrecord")
    record = make_record(0, 5)
    record["input_mask"] = record["input_mask"][:-1]
    tfrecord_lib.write_examples(path, [record])
    with pytest.raises(tf.errors.InvalidArgumentError, match="`input_mask` and `input_ids`"):
        list(BertPretrainDynamicDataLoader(config(path)).load())


def test_a_tfds_source_is_refused():
    params = config("", tfds_name="wikipedia/20201201.en", tfds_split="train")
    with pytest.raises(ConfigError, match="tfds_name"):
        BertPretrainDynamicDataLoader(params)
