"""Reading a prepared TensorFlow Datasets (TFDS) split for `InputReader`.

`tensorflow_datasets` is imported here, lazily, only when a `DataConfig` sets `tfds_name`:
importing it takes seconds. The reader never downloads or prepares data; a dataset that is
not prepared in `tfds_data_dir` is an `InputNotFoundError` naming the dataset and the
directory.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from garden_core.data.files import InputNotFoundError


def _tfds() -> Any:
    import tensorflow_datasets as tfds  # Slow to import: only when a config names TFDS.

    return tfds


class TfdsSource:
    """One split of a prepared TFDS dataset, checked when created.

    Args:
        name: The TFDS dataset name, optionally with config and version
            (`"mnist"`, `"coco/2017:1.1.0"`).
        split: The split, TFDS slicing included (`"train"`, `"train[:90%]"`).
        data_dir: The TFDS data directory; "" uses TFDS's default (`~/tensorflow_datasets`
            or `$TFDS_DATA_DIR`).
        as_supervised: Whether to yield `(input, target)` tuples from the dataset's
            `supervised_keys` instead of feature dicts.
        skip_decoding_feature: A comma-separated list of features left encoded (through
            `tfds.decode.SkipDecoding`), for example `"image"` to decode it yourself.

    Raises:
        InputNotFoundError: If the dataset is unknown or not prepared in `data_dir`.
        ValueError: If the split or a skipped feature does not exist.
    """

    def __init__(
        self,
        name: str,
        split: str,
        data_dir: str = "",
        as_supervised: bool = False,
        skip_decoding_feature: str = "",
    ):
        tfds = _tfds()
        self.name = name
        self.split = split
        self.as_supervised = as_supervised
        where = f"data_dir {data_dir!r}" if data_dir else "the default TFDS data_dir"
        try:
            self.builder = tfds.builder(name, data_dir=data_dir or None)
        except tfds.core.registered.DatasetNotFoundError as error:
            reason = str(error).strip().splitlines()[0]
            raise InputNotFoundError(
                f"`DataConfig.tfds_name` {name!r}: no such TFDS dataset in {where} ({reason})"
            ) from None
        if not self.builder.is_prepared():
            raise InputNotFoundError(
                f"`DataConfig.tfds_name` {name!r} is not prepared in {where} (looked in "
                f"{self.builder.data_dir}). The reader never downloads: prepare it first, e.g. "
                f"`tfds build {name} --data_dir DIR`."
            )
        try:
            self.file_instructions = self.builder.info.splits[split].file_instructions
        except (KeyError, ValueError) as error:
            known = ", ".join(sorted(self.builder.info.splits))
            raise ValueError(
                f"`DataConfig.tfds_split` {split!r} is not a split of TFDS dataset {name!r} "
                f"(splits: {known}): {error}"
            ) from None
        features = set(self.builder.info.features.keys())
        self.decoders = {}
        for feature in (f.strip() for f in skip_decoding_feature.split(",")):
            if not feature:
                continue
            if feature not in features:
                raise ValueError(
                    f"`DataConfig.tfds_skip_decoding_feature` names {feature!r}, which TFDS "
                    f"dataset {name!r} lacks (features: {', '.join(sorted(features))})"
                )
            self.decoders[feature] = tfds.decode.SkipDecoding()

    @property
    def files(self) -> list[str]:
        """The record files of the split, or [] if they are not TFRecords."""
        if str(self.builder.info.file_format.value) != "tfrecord":
            return []
        return list(dict.fromkeys(i.filename for i in self.file_instructions))

    def read(
        self,
        input_context: tf.distribute.InputContext | None,
        *,
        shuffle_files: bool,
        repeat: bool,
        seed: int | None,
        cycle_length: int | None,
        block_length: int,
    ) -> tf.data.Dataset:
        """Returns the split's examples, this input pipeline's share of them when sharding.

        The split's files are sharded across `input_context`'s input pipelines when there are
        at least as many files as pipelines; otherwise every pipeline reads all files and
        keeps every n-th example.

        Args:
            input_context: The pipeline's place among all input pipelines, or None to read
                everything.
            shuffle_files: Whether to shuffle the order of the files (training).
            repeat: Whether to repeat the files forever.
            seed: The file-shuffle seed, or None for a random one.
            cycle_length: How many files to read at once; None lets TFDS choose.
            block_length: How many consecutive examples to take from each file in turn.

        Returns:
            The examples, not shuffled record by record.
        """
        tfds = _tfds()
        pipelines = input_context.num_input_pipelines if input_context else 1
        shard_examples = pipelines > 1 and len(self.file_instructions) < pipelines
        read_config = tfds.ReadConfig(
            input_context=None if shard_examples else input_context,
            shuffle_seed=seed,
            interleave_cycle_length=cycle_length,
            interleave_block_length=block_length,
            repeat_filenames=repeat,
            assert_cardinality=not repeat,
            skip_prefetch=True,
        )
        dataset = self.builder.as_dataset(
            split=self.split,
            shuffle_files=shuffle_files,
            as_supervised=self.as_supervised,
            decoders=self.decoders or None,
            read_config=read_config,
        )
        if shard_examples:
            dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
        return dataset
