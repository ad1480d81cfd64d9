"""`InputReader`: turns a `DataConfig` into a batched `tf.data.Dataset`.

This is Model Garden's `official/core/input_reader.InputReader` for Garden: a task builds one
reader per `DataConfig` and calls `read(input_context)` from the function it gives
`strategy.distribute_datasets_from_function`, so each input pipeline reads its own share.
What `read` builds, in order:

1. Source: the files `input_path` names (see `match_files`), or a prepared TFDS split
   (`tfds_name`, `tfds_split`, `tfds_data_dir`). With an input context and `sharding`, each
   input pipeline takes its share: whole files when there are at least as many files as
   pipelines, else every n-th record of all files. Training shuffles the file order (`seed`)
   and repeats the files; files are read `cycle_length` at a time, `block_length` records
   from each in turn, through `dataset_fn` (called with one file path).
2. Training without `cache`: records are shuffled in a `shuffle_buffer_size` buffer.
3. `decoder_fn` maps each raw record; with a dict `input_path`, `combine_fn` merges the
   named datasets into one.
4. `cache`: the decoded records are cached, and training repeats and shuffles the cache.
   Unlike Model Garden, which caches after `parser_fn`, random augmentation done by
   `parser_fn` stays random from epoch to epoch.
5. `sample_fn` (dataset to dataset), then `parser_fn` (per element), then `filter_fn`
   (a predicate on parsed elements).
6. Batching to the per-replica batch size, `input_context.get_per_replica_batch_size(
   global_batch_size)` (the global size without a context), honouring `drop_remainder`;
   or `transform_and_batch_fn(dataset, input_context)` instead. `global_batch_size` must
   be positive unless `transform_and_batch_fn` is given (Model Garden always batches too).
7. `postprocess_fn` per batch, `deterministic` and autotuning (`ram_budget`,
   `autotune_algorithm`) as dataset options, then prefetching (`prefetch_buffer_size`, or
   AUTOTUNE).

Files are sharded before they are shuffled, so workers need no shared seed to read disjoint
files. Nothing is ever downloaded.

Errors name the config field at fault: a pattern matching no file or a TFDS dataset not
prepared is an `InputNotFoundError` (a `ValueError`). A corrupt or truncated TFRecord makes
`tf.data` raise `tf.errors.DataLossError("corrupted record at 245")`, which in TensorFlow
2.21 does not name the file; wrap the loop that iterates the dataset in
`reader.naming_corrupt_files()` (or call `reader.explain_data_error(error)`) to re-raise it
as a `CorruptRecordError`, still a `DataLossError`, that names the bad files, found by
reading each of `reader.files` on its own:

    reader = InputReader(params.task.train_data, decoder_fn=decode, parser_fn=parse)
    dataset = strategy.distribute_datasets_from_function(reader.read)
    with reader.naming_corrupt_files():
        controller.train(steps=params.trainer.train_steps)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import tensorflow as tf
from absl import logging

from garden_core.config import DataConfig
from garden_core.data.corrupt_files import CorruptRecordError, explain_data_error
from garden_core.data.files import match_files
from garden_core.data.tfds_source import TfdsSource

DatasetFn = Callable[[Any], tf.data.Dataset]
TransformAndBatchFn = Callable[
    [tf.data.Dataset, "tf.distribute.InputContext | None"], tf.data.Dataset
]


def _maybe_map(dataset: tf.data.Dataset, fn: Callable[..., Any] | None) -> tf.data.Dataset:
    if fn is None:
        return dataset
    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


class InputReader:
    """Reads the input a `DataConfig` describes as a `tf.data.Dataset`.

    Files are resolved when the reader is built, so a bad `input_path` or an unprepared
    TFDS dataset fails at once; the dataset itself is built by `read`. The module docstring
    gives the order in which the hooks run.

    Example:

    ```python
    def decode(record):
        return tf.io.parse_single_example(record, {"x": tf.io.FixedLenFeature([], tf.int64)})

    config = DataConfig(input_path="/data/train-*.tfrecord", global_batch_size=64,
                        is_training=True, seed=1)
    reader = InputReader(config, decoder_fn=decode)
    dataset = strategy.distribute_datasets_from_function(reader.read)
    ```

    Args:
        params: The `DataConfig` to read.
        dataset_fn: Builds a dataset of raw records from one file path (a string tensor),
            for example `tf.data.TFRecordDataset` (the default) or a `functools.partial` of
            it with `compression_type="GZIP"`.
        decoder_fn: Maps one raw record (for example a serialized `tf.train.Example`) to
            tensors; None passes records on as they are.
        combine_fn: Merges the dict of decoded datasets that a dict `input_path` (named
            inputs) yields into one dataset, for example with
            `tf.data.Dataset.sample_from_datasets`. Required with a dict `input_path`.
        sample_fn: Transforms the decoded (and combined) dataset as a whole before parsing,
            for example to resample it; called as `dataset.apply(sample_fn)`.
        parser_fn: Maps one decoded element to what the model consumes (augmentation,
            label encoding); None leaves elements as decoded.
        filter_fn: A predicate on parsed elements; elements for which it is False are
            dropped before batching.
        transform_and_batch_fn: Called as `transform_and_batch_fn(dataset, input_context)`
            instead of the default batching, for padding or bucketing batches; it must batch.
        postprocess_fn: Maps each batch, after batching.

    Raises:
        ValueError: If `input_path` and `tfds_name` are both set, a dict `input_path` comes
            without `combine_fn`, `tfds_name` has no `tfds_split`, or `global_batch_size` is
            not positive and no `transform_and_batch_fn` is given.
        InputNotFoundError: If a file pattern matches nothing or the TFDS dataset is not
            prepared in `tfds_data_dir`.
    """

    def __init__(
        self,
        params: DataConfig,
        dataset_fn: DatasetFn = tf.data.TFRecordDataset,
        decoder_fn: Callable[..., Any] | None = None,
        combine_fn: Callable[[dict[str, tf.data.Dataset]], tf.data.Dataset] | None = None,
        sample_fn: Callable[[tf.data.Dataset], tf.data.Dataset] | None = None,
        parser_fn: Callable[..., Any] | None = None,
        filter_fn: Callable[..., Any] | None = None,
        transform_and_batch_fn: TransformAndBatchFn | None = None,
        postprocess_fn: Callable[..., Any] | None = None,
    ):
        if params.input_path and params.tfds_name:
            raise ValueError(
                "Set one of `DataConfig.input_path` and `DataConfig.tfds_name`, not both; got "
                f"input_path={params.input_path!r} and tfds_name={params.tfds_name!r}"
            )
        named_inputs = isinstance(params.input_path, Mapping)
        if named_inputs and params.input_path and combine_fn is None:
            raise ValueError(
                "`DataConfig.input_path` is a dict of named inputs "
                f"({', '.join(params.input_path)}); pass `combine_fn` to merge them"
            )
        if params.tfds_name and not params.tfds_split:
            raise ValueError(
                f"`DataConfig.tfds_name` is {params.tfds_name!r} but `tfds_split` is not set"
            )
        if params.ram_budget is not None and params.ram_budget <= 0:
            raise ValueError(
                f"`DataConfig.ram_budget` is {params.ram_budget}; give a positive number of "
                "GiB, or null for tf.data's default"
            )
        algorithms = [a.name for a in tf.data.experimental.AutotuneAlgorithm]
        if params.autotune_algorithm is not None and params.autotune_algorithm not in algorithms:
            raise ValueError(
                f"`DataConfig.autotune_algorithm` is {params.autotune_algorithm!r}; expected one "
                f"of {', '.join(algorithms)}, or null"
            )
        if transform_and_batch_fn is None and params.global_batch_size <= 0:
            raise ValueError(
                f"`DataConfig.global_batch_size` is {params.global_batch_size}; set it to a "
                "positive size, or pass `transform_and_batch_fn` to batch (or not) yourself"
            )
        self._params = params
        self._dataset_fn = dataset_fn
        self._decoder_fn = decoder_fn
        self._combine_fn = combine_fn
        self._sample_fn = sample_fn
        self._parser_fn = parser_fn
        self._filter_fn = filter_fn
        self._transform_and_batch_fn = transform_and_batch_fn
        self._postprocess_fn = postprocess_fn
        self._training = bool(params.is_training)

        self._files: list[str] | dict[str, list[str]] | None = None
        self._tfds: TfdsSource | None = None
        if named_inputs and params.input_path:
            self._files = {
                name: match_files(path, field=f"input_path.{name}")
                for name, path in params.input_path.items()
            }
        elif params.input_path:
            self._files = match_files(params.input_path)
        elif params.tfds_name:
            self._tfds = TfdsSource(
                params.tfds_name,
                params.tfds_split,
                data_dir=params.tfds_data_dir,
                as_supervised=params.tfds_as_supervised,
                skip_decoding_feature=params.tfds_skip_decoding_feature,
            )

    @property
    def files(self) -> list[str] | dict[str, list[str]] | None:
        """The files read: a list, a dict of lists for named inputs, or None.

        For TFDS, the split's TFRecord files. None when the config names no source.
        """
        if self._tfds is not None:
            return self._tfds.files
        if isinstance(self._files, dict):
            return {name: list(files) for name, files in self._files.items()}
        return None if self._files is None else list(self._files)

    def per_replica_batch_size(
        self, input_context: tf.distribute.InputContext | None = None
    ) -> int:
        """Returns the batch size one replica gets from `global_batch_size`.

        Args:
            input_context: The input pipeline's context, or None for no distribution.
        """
        if input_context is None:
            return self._params.global_batch_size
        return input_context.get_per_replica_batch_size(self._params.global_batch_size)

    def read(
        self,
        input_context: tf.distribute.InputContext | None = None,
        dataset: tf.data.Dataset | Mapping[str, tf.data.Dataset] | None = None,
    ) -> tf.data.Dataset:
        """Builds the dataset of batches for one input pipeline.

        Args:
            input_context: Which of the job's input pipelines this is and how many replicas
                it feeds, as `distribute_datasets_from_function` passes it; None reads
                everything into global-size batches.
            dataset: A dataset (or dict of named datasets) of raw records to use instead of
                the config's source. It is taken as is: neither sharded nor repeated, though
                shuffled, decoded, parsed and batched like any other.

        Returns:
            The batched, prefetched dataset.

        Raises:
            ValueError: If the config names no source and no `dataset` is passed.
        """
        params = self._params
        if dataset is None:
            dataset = self._read_source(input_context)
        if isinstance(dataset, Mapping):
            if self._combine_fn is None:
                raise ValueError("A dict of named datasets needs `combine_fn` to merge them")
            dataset = self._combine_fn(
                {name: self._shuffle_and_decode(ds) for name, ds in dataset.items()}
            )
        else:
            dataset = self._shuffle_and_decode(dataset)

        if params.cache:
            dataset = dataset.cache()
            if self._training:
                dataset = dataset.repeat().shuffle(params.shuffle_buffer_size, seed=params.seed)
        if self._sample_fn is not None:
            dataset = dataset.apply(self._sample_fn)
        dataset = _maybe_map(dataset, self._parser_fn)
        if self._filter_fn is not None:
            dataset = dataset.filter(self._filter_fn)

        if self._transform_and_batch_fn is not None:
            dataset = self._transform_and_batch_fn(dataset, input_context)
        else:
            dataset = dataset.batch(
                self.per_replica_batch_size(input_context), drop_remainder=params.drop_remainder
            )
        dataset = _maybe_map(dataset, self._postprocess_fn)
        options = self._options()
        if options is not None:
            dataset = dataset.with_options(options)
        return dataset.prefetch(params.prefetch_buffer_size or tf.data.AUTOTUNE)

    def _options(self) -> tf.data.Options | None:
        """The dataset options: `deterministic`, autotuning; None when all are defaults.

        Evaluation pipelines are autotuned like training ones. (Destroying an autotuned
        iterator can block for a while inside TensorFlow; garden-orbit's evaluator destroys
        each evaluation's iterator on a background thread, so evaluations never wait for it.)
        """
        params = self._params
        tuned = params.ram_budget is not None or params.autotune_algorithm is not None
        if params.deterministic is None and not tuned:
            return None
        options = tf.data.Options()
        if params.deterministic is not None:
            options.deterministic = params.deterministic
        if params.ram_budget is not None:
            options.autotune.ram_budget = params.ram_budget * 1024**3
        if params.autotune_algorithm is not None:
            options.autotune.autotune_algorithm = getattr(
                tf.data.experimental.AutotuneAlgorithm, params.autotune_algorithm
            )
        return options

    def explain_data_error(self, error: tf.errors.DataLossError) -> CorruptRecordError:
        """Returns a `CorruptRecordError` naming the files behind `error`.

        Reads each of `files` on its own with `dataset_fn` (slow for big datasets, so call
        it only after a failure). Use `naming_corrupt_files` to have it done for you.

        Args:
            error: The `DataLossError` raised while iterating this reader's dataset.

        Returns:
            The error to raise, `raise reader.explain_data_error(error) from error`; `error`
            itself when it already is a `CorruptRecordError`.
        """
        if isinstance(error, CorruptRecordError):
            return error
        if self._tfds is not None:
            source = f"TFDS {self._tfds.name!r} split {self._tfds.split!r}"
            return explain_data_error(error, self._tfds.files, tf.data.TFRecordDataset, source)
        files = self._files or []
        if isinstance(files, dict):
            files = [file for group in files.values() for file in group]
        return explain_data_error(error, files, self._dataset_fn)

    @contextlib.contextmanager
    def naming_corrupt_files(self) -> Iterator[None]:
        """Re-raises a `DataLossError` from the block as a `CorruptRecordError` naming files.

        Wrap the training or evaluation loop that iterates this reader's dataset.
        """
        try:
            yield
        except CorruptRecordError:
            raise
        except tf.errors.DataLossError as error:
            raise self.explain_data_error(error) from error

    def _read_source(
        self, input_context: tf.distribute.InputContext | None
    ) -> tf.data.Dataset | dict[str, tf.data.Dataset]:
        params = self._params
        context = input_context if params.sharding else None
        if self._tfds is not None:
            return self._tfds.read(
                context,
                shuffle_files=self._training,
                repeat=self._training and not params.cache,
                seed=params.seed,
                cycle_length=params.cycle_length,
                block_length=params.block_length,
            )
        if self._files is None:
            raise ValueError(
                "Neither `DataConfig.input_path` nor `DataConfig.tfds_name` is set; set one, "
                "or pass `dataset` to `read`"
            )
        if isinstance(self._files, dict):
            return {name: self._read_files(files, context) for name, files in self._files.items()}
        return self._read_files(self._files, context)

    def _read_files(
        self, files: list[str], input_context: tf.distribute.InputContext | None
    ) -> tf.data.Dataset:
        params = self._params
        pipelines = input_context.num_input_pipelines if input_context else 1
        repeat = self._training and not params.cache
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if len(files) >= pipelines:
            if pipelines > 1:
                dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
            if self._training:
                dataset = dataset.shuffle(
                    len(files), seed=params.seed, reshuffle_each_iteration=not params.cache
                )
            if repeat:
                dataset = dataset.repeat()
            dataset = dataset.interleave(
                self._dataset_fn,
                cycle_length=params.cycle_length,
                block_length=params.block_length,
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=params.deterministic,
            )
        else:
            logging.warning(
                "%d input files for %d input pipelines: every pipeline reads all files and "
                "keeps every %d-th record. Write at least %d files to shard by file.",
                len(files),
                pipelines,
                pipelines,
                pipelines,
            )
            dataset = dataset.flat_map(self._dataset_fn)
            dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
            if repeat:
                dataset = dataset.repeat()
        if pipelines > 1:
            # Sharded here already: tf.distribute must not shard it again.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.OFF
            )
            dataset = dataset.with_options(options)
        return dataset

    def _shuffle_and_decode(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        if self._training and not self._params.cache:
            dataset = dataset.shuffle(self._params.shuffle_buffer_size, seed=self._params.seed)
        return _maybe_map(dataset, self._decoder_fn)
