"""Tests for `garden_core.data.InputReader` on tiny TFRecords and a tiny local TFDS dataset."""

from __future__ import annotations

import collections
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from garden_core.config import DataConfig
from garden_core.data import (
    CorruptRecordError,
    InputNotFoundError,
    InputReader,
    find_corrupt_files,
)

RECORDS_PER_FILE = 5
NUM_FILES = 4
ALL_VALUES = list(range(RECORDS_PER_FILE * NUM_FILES))


def _write_records(path, values) -> str:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for value in values:
            feature = {"x": tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))}
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return str(path)


def _decode(record):
    return tf.io.parse_single_example(record, {"x": tf.io.FixedLenFeature([], tf.int64)})


def _values(dataset, max_batches=None) -> list[int]:
    """The `x` values of a batched dataset, in order."""
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    return [int(v) for batch in dataset for v in batch["x"].numpy()]


@pytest.fixture
def record_files(tmp_path) -> list[str]:
    """Four TFRecord files; file i holds x = 5i .. 5i+4."""
    return [
        _write_records(
            tmp_path / f"part-{i}.tfrecord",
            range(i * RECORDS_PER_FILE, (i + 1) * RECORDS_PER_FILE),
        )
        for i in range(NUM_FILES)
    ]


def _config(input_path, **overrides) -> DataConfig:
    values = {"input_path": input_path, "global_batch_size": 4, "drop_remainder": False}
    values.update(overrides)
    return DataConfig(**values)


@pytest.mark.parametrize("form", ["comma_list", "glob", "list", "list_of_comma_lists"])
def test_reads_every_record_for_each_pattern_form(record_files, tmp_path, form):
    input_path = {
        "comma_list": ", ".join(record_files),
        "glob": str(tmp_path / "part-*.tfrecord"),
        "list": record_files,
        "list_of_comma_lists": [",".join(record_files[:2]), ",".join(record_files[2:])],
    }[form]
    reader = InputReader(_config(input_path), decoder_fn=_decode)
    assert reader.files == record_files
    assert sorted(_values(reader.read())) == ALL_VALUES


def test_hooks_run_in_order_decode_parse_filter_batch_postprocess(record_files):
    reader = InputReader(
        _config(record_files, global_batch_size=3),
        decoder_fn=_decode,
        parser_fn=lambda e: {"x": e["x"] * 10},
        filter_fn=lambda e: e["x"] % 20 == 0,  # Keeps the even values, after parsing.
        postprocess_fn=lambda b: {"x": b["x"], "size": tf.shape(b["x"])[0]},
    )
    batches = list(reader.read())
    assert sorted(_values(batches)) == [v * 10 for v in ALL_VALUES if v % 2 == 0]
    assert [int(b["size"]) for b in batches] == [3, 3, 3, 1]


def test_transform_and_batch_fn_replaces_batching_and_gets_the_context(record_files):
    seen = []

    def transform_and_batch(dataset, input_context):
        seen.append(input_context)
        return dataset.batch(7)

    context = tf.distribute.InputContext(num_input_pipelines=1, num_replicas_in_sync=2)
    reader = InputReader(
        _config(record_files), decoder_fn=_decode, transform_and_batch_fn=transform_and_batch
    )
    sizes = [len(b["x"]) for b in reader.read(context)]
    assert seen == [context]
    assert sizes == [7, 7, 6]


@pytest.mark.parametrize(
    ("cycle_length", "block_length", "expected"),
    [
        # Two files at a time, one record from each in turn.
        (2, 1, [0, 5, 1, 6, 2, 7, 3, 8, 4, 9, 10, 15, 11, 16, 12, 17, 13, 18, 14, 19]),
        # Two files at a time, two records from each in turn.
        (2, 2, [0, 1, 5, 6, 2, 3, 7, 8, 4, 9, 10, 11, 15, 16, 12, 13, 17, 18, 14, 19]),
        # One file at a time: the files in order.
        (1, 3, ALL_VALUES),
    ],
)
def test_files_are_interleaved_by_cycle_and_block_length(
    record_files, cycle_length, block_length, expected
):
    config = _config(
        record_files,
        cycle_length=cycle_length,
        block_length=block_length,
        deterministic=True,
        global_batch_size=20,
    )
    assert _values(InputReader(config, decoder_fn=_decode).read()) == expected


def test_autotune_options_reach_the_dataset(record_files):
    config = _config(record_files, ram_budget=2, autotune_algorithm="GRADIENT_DESCENT")
    options = InputReader(config, decoder_fn=_decode).read().options()
    assert options.autotune.ram_budget == 2 * 1024**3
    assert (
        options.autotune.autotune_algorithm
        == tf.data.experimental.AutotuneAlgorithm.GRADIENT_DESCENT
    )


def test_evaluation_pipelines_are_autotuned_like_training_ones(record_files):
    def options(**overrides):
        return InputReader(_config(record_files, **overrides), decoder_fn=_decode).read().options()

    assert options(is_training=False).autotune.enabled is not False
    assert options(is_training=True).autotune.enabled is not False
    assert _values(InputReader(_config(record_files), decoder_fn=_decode).read()) == ALL_VALUES


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ram_budget": 0}, "`DataConfig.ram_budget` is 0"),
        ({"autotune_algorithm": "FASTEST"}, "expected one of DEFAULT, HILL_CLIMB"),
    ],
)
def test_bad_autotune_options_are_named(record_files, overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        InputReader(_config(record_files, **overrides), decoder_fn=_decode)


def test_read_uses_a_given_dataset_instead_of_files(record_files):
    records = tf.data.TFRecordDataset(record_files[:1])
    reader = InputReader(DataConfig(global_batch_size=2, drop_remainder=False), decoder_fn=_decode)
    assert reader.files is None
    assert _values(reader.read(dataset=records)) == list(range(RECORDS_PER_FILE))


@pytest.mark.parametrize("num_files", [NUM_FILES, 3, 1], ids=["4_files", "3_files", "1_file"])
def test_two_workers_together_see_each_record_exactly_once(record_files, num_files):
    files = record_files[:num_files]
    reader = InputReader(_config(files, global_batch_size=4), decoder_fn=_decode)
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        batches = list(reader.read(context))
        assert max(len(b["x"]) for b in batches) == 2  # Global 4 over 2 replicas.
        seen.append(_values(batches))
    expected = list(range(num_files * RECORDS_PER_FILE))
    assert sorted(seen[0] + seen[1]) == expected
    files_seen = [{v // RECORDS_PER_FILE for v in worker} for worker in seen]
    if num_files >= 2:  # Sharded by file: no file is split across workers.
        assert not files_seen[0] & files_seen[1]
    else:  # Sharded by record: both workers read the one file, every other record.
        assert seen == [expected[0::2], expected[1::2]]


def test_sharding_off_gives_every_worker_every_record(record_files):
    reader = InputReader(_config(record_files, sharding=False), decoder_fn=_decode)
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(2, pipeline_id, 2)
        assert sorted(_values(reader.read(context))) == ALL_VALUES


def test_training_shuffle_is_reproducible_with_a_seed(record_files):
    def first_records(seed):
        config = _config(record_files, is_training=True, seed=seed, shuffle_buffer_size=8)
        return _values(InputReader(config, decoder_fn=_decode).read(), max_batches=5)

    assert first_records(7) == first_records(7)
    assert first_records(7) != first_records(8)
    assert first_records(7) != sorted(first_records(7))


def test_training_repeats_and_evaluation_stops(record_files):
    # A buffer of one leaves records in file order, so 60 records are exactly 3 epochs.
    training = _config(record_files, is_training=True, shuffle_buffer_size=1, seed=1)
    values = _values(InputReader(training, decoder_fn=_decode).read(), max_batches=15)
    assert collections.Counter(values) == {v: 3 for v in ALL_VALUES}
    evaluation = _values(InputReader(_config(record_files), decoder_fn=_decode).read())
    assert sorted(evaluation) == ALL_VALUES


@pytest.mark.parametrize("is_training", [False, True])
def test_cache_keeps_decoded_records_but_parses_every_epoch(record_files, is_training):
    calls = collections.Counter()

    def counting(name, fn):
        def counted(value):
            calls[name] += 1
            return value

        def mapped(element):
            element = fn(element)
            x = tf.py_function(counted, [element["x"]], tf.int64)
            return {"x": tf.ensure_shape(x, [])}

        return mapped

    # A buffer of one keeps 60 training records exactly 3 epochs.
    config = _config(record_files, cache=True, is_training=is_training, shuffle_buffer_size=1)
    reader = InputReader(
        config,
        decoder_fn=counting("decode", _decode),
        parser_fn=counting("parse", lambda e: e),
    )
    dataset = reader.read()
    if is_training:  # Repeats the cache: 3 epochs from one decoding pass.
        values = _values(dataset, max_batches=15)
        assert collections.Counter(values) == {v: 3 for v in ALL_VALUES}
    else:  # Two passes over the dataset, the second from the cache.
        assert sorted(_values(dataset)) == sorted(_values(dataset)) == ALL_VALUES
    assert calls["decode"] == len(ALL_VALUES)
    assert calls["parse"] >= 2 * len(ALL_VALUES)


@pytest.mark.parametrize(("drop_remainder", "sizes"), [(True, [6, 6, 6]), (False, [6, 6, 6, 2])])
def test_drop_remainder(record_files, drop_remainder, sizes):
    config = _config(record_files, global_batch_size=6, drop_remainder=drop_remainder)
    dataset = InputReader(config, decoder_fn=_decode).read()
    assert [len(b["x"]) for b in dataset] == sizes


def test_named_inputs_are_read_and_combined(record_files):
    config = _config({"a": record_files[0], "b": record_files[1:3]})
    reader = InputReader(
        config,
        decoder_fn=_decode,
        combine_fn=lambda datasets: datasets["a"].concatenate(datasets["b"]),
    )
    assert reader.files == {"a": record_files[:1], "b": record_files[1:3]}
    assert _values(reader.read())[:RECORDS_PER_FILE] == list(range(RECORDS_PER_FILE))
    assert sorted(_values(reader.read())) == list(range(3 * RECORDS_PER_FILE))
    with pytest.raises(ValueError, match="combine_fn"):
        InputReader(config, decoder_fn=_decode)


def test_pattern_matching_no_file_names_pattern_and_field(record_files, tmp_path):
    missing = str(tmp_path / "nope-*.tfrecord")
    with pytest.raises(InputNotFoundError, match=r"input_path.*nope-\*\.tfrecord"):
        InputReader(_config(f"{record_files[0]},{missing}"))
    with pytest.raises(ValueError, match=r"input_path\.b.*nope"):
        InputReader(_config({"a": record_files[0], "b": missing}), combine_fn=lambda d: d["a"])
    with pytest.raises(InputNotFoundError, match="directory"):
        InputReader(_config(str(tmp_path)))


def test_config_errors_name_the_fields(record_files):
    with pytest.raises(ValueError, match="not both"):
        InputReader(_config(record_files, tfds_name="mnist", tfds_split="train"))
    with pytest.raises(ValueError, match="Neither `DataConfig.input_path`"):
        InputReader(DataConfig(global_batch_size=2)).read()
    with pytest.raises(ValueError, match="global_batch_size` is 0"):
        InputReader(_config(record_files, global_batch_size=0))
    with pytest.raises(ValueError, match="tfds_split"):
        InputReader(DataConfig(tfds_name="mnist", global_batch_size=2))


def _flip_middle_bytes(path):
    data = bytearray(pathlib.Path(path).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    pathlib.Path(path).write_bytes(bytes(data))


def _truncate(path):
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(data[:-7])


@pytest.mark.parametrize("damage", [_flip_middle_bytes, _truncate], ids=["flipped", "truncated"])
def test_corrupt_file_error_names_the_file(record_files, damage):
    bad = record_files[2]
    damage(bad)
    reader = InputReader(_config(record_files, is_training=True, seed=0), decoder_fn=_decode)
    dataset = reader.read()
    with pytest.raises(CorruptRecordError) as raised, reader.naming_corrupt_files():
        for _ in dataset.take(100):
            pass
    error = raised.value
    assert isinstance(error, tf.errors.DataLossError)
    assert list(error.bad_files) == [bad]
    assert bad in str(error)
    assert not any(good in str(error) for good in record_files if good != bad)
    assert isinstance(error.__cause__, tf.errors.DataLossError)
    assert find_corrupt_files(record_files) == error.bad_files
    assert find_corrupt_files([f for f in record_files if f != bad]) == {}


def test_explain_data_error_when_a_rescan_finds_nothing(record_files):
    reader = InputReader(_config(record_files), decoder_fn=_decode)
    explained = reader.explain_data_error(tf.errors.DataLossError(None, None, "lost"))
    assert explained.bad_files == {}
    assert "found none corrupt" in str(explained)
    assert reader.explain_data_error(explained) is explained


class GardenReaderTiny(tfds.core.GeneratorBasedBuilder):
    """Twelve train and three test examples: an int `index` and a 4x4 RGB `image`."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"index": tf.int64, "image": tfds.features.Image(shape=(4, 4, 3))}
            ),
            supervised_keys=("image", "index"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Generated locally: nothing to download.
        return {"train": self._generate_examples(0, 12), "test": self._generate_examples(100, 3)}

    def _generate_examples(self, start, count):
        for index in range(start, start + count):
            yield index, {"index": index, "image": np.full((4, 4, 3), index, np.uint8)}


def _prepare_tiny_tfds(data_dir) -> str:
    config = tfds.download.DownloadConfig(num_shards=3, try_download_gcs=False)
    GardenReaderTiny(data_dir=str(data_dir)).download_and_prepare(download_config=config)
    return str(data_dir)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory) -> str:
    return _prepare_tiny_tfds(tmp_path_factory.mktemp("tfds"))


def _tfds_config(data_dir, **overrides) -> DataConfig:
    values = {
        "tfds_name": "garden_reader_tiny",
        "tfds_split": "train",
        "tfds_data_dir": data_dir,
        "global_batch_size": 4,
        "drop_remainder": False,
    }
    values.update(overrides)
    return DataConfig(**values)


def test_tfds_split_is_read_decoded_and_batched(tfds_dir):
    reader = InputReader(_tfds_config(tfds_dir))
    batches = list(reader.read())
    indices = sorted(int(i) for b in batches for i in b["index"].numpy())
    assert indices == list(range(12))
    assert batches[0]["image"].dtype == tf.uint8
    assert batches[0]["image"].shape == (4, 4, 4, 3)
    assert len(reader.files) == 3
    assert all(f.startswith(tfds_dir) for f in reader.files)


def test_tfds_supervised_and_skipped_decoding(tfds_dir):
    supervised = InputReader(_tfds_config(tfds_dir, tfds_split="test", tfds_as_supervised=True))
    images, labels = next(iter(supervised.read()))
    assert images.shape == (3, 4, 4, 3)
    assert sorted(labels.numpy().tolist()) == [100, 101, 102]
    skipped = InputReader(_tfds_config(tfds_dir, tfds_skip_decoding_feature="image"))
    batch = next(iter(skipped.read()))
    assert batch["image"].dtype == tf.string  # Still the encoded PNG.
    with pytest.raises(ValueError, match="tfds_skip_decoding_feature.*'label'"):
        InputReader(_tfds_config(tfds_dir, tfds_skip_decoding_feature="label"))


@pytest.mark.parametrize("pipelines", [2, 4], ids=["by_file", "by_record"])
def test_tfds_workers_together_see_each_example_once(tfds_dir, pipelines):
    reader = InputReader(_tfds_config(tfds_dir, global_batch_size=pipelines))
    seen = []
    for pipeline_id in range(pipelines):
        context = tf.distribute.InputContext(pipelines, pipeline_id, pipelines)
        batches = list(reader.read(context))
        assert {len(b["index"]) for b in batches} == {1}
        seen.extend(int(b["index"][0]) for b in batches)
    assert sorted(seen) == list(range(12))


def test_tfds_training_shuffles_and_repeats(tfds_dir):
    def indices(**overrides):
        reader = InputReader(_tfds_config(tfds_dir, is_training=True, **overrides))
        return [int(i) for b in reader.read().take(9) for i in b["index"].numpy()]

    # A buffer of one shuffles files only, so 36 examples are exactly 3 epochs.
    assert collections.Counter(indices(shuffle_buffer_size=1)) == {i: 3 for i in range(12)}
    shuffled = indices(seed=5)
    assert shuffled == indices(seed=5)
    assert shuffled[:12] != list(range(12))


def test_tfds_missing_dataset_names_dataset_and_directory(tfds_dir, tmp_path):
    with pytest.raises(InputNotFoundError, match="'garden_no_such_dataset'"):
        InputReader(_tfds_config(tfds_dir, tfds_name="garden_no_such_dataset"))
    empty = str(tmp_path / "empty")
    with pytest.raises(InputNotFoundError, match=f"'garden_reader_tiny'.*{empty}"):
        InputReader(_tfds_config(empty))
    with pytest.raises(ValueError, match="tfds_split` 'validation'"):
        InputReader(_tfds_config(tfds_dir, tfds_split="validation"))


def test_tfds_corrupt_shard_is_named(tmp_path):
    reader = InputReader(_tfds_config(_prepare_tiny_tfds(tmp_path / "tfds")))
    bad = reader.files[1]
    _flip_middle_bytes(bad)
    with pytest.raises(CorruptRecordError, match=bad), reader.naming_corrupt_files():
        list(reader.read())
