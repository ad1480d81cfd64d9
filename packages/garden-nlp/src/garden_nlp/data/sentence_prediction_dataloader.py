"""Input pipelines of sentence (pair) classification and regression (GLUE-style tasks).

- `SentencePredictionDataLoader` reads TFRecords of tokenized features
  (`SentencePredictionDataConfig`): `input_ids`, `input_mask`, `segment_ids` and the label.
- `SentencePredictionTextDataLoader` reads raw text (`SentencePredictionTextDataConfig`)
  from TSV or CSV files with a header row, TFRecords of string features, or a TFDS
  dataset, and tokenizes and packs it in the pipeline with `TextProcessor`.

Both yield batches of `(features, labels)`: features are the encoder inputs
`input_word_ids`, `input_mask`, `input_type_ids` (int32 `[batch, seq_length]`), plus
`example_id` when `include_example_id`; labels are int32 class ids or float32 values
(`label_type`), shape `[batch]`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from garden_core.config import ConfigError
from garden_core.data import InputReader
from garden_nlp.configs.data import (
    FILE_TYPES,
    LABEL_TYPES,
    TEXT_FILE_TYPES,
    SentencePredictionDataConfig,
    SentencePredictionTextDataConfig,
)
from garden_nlp.data import tfrecord_lib
from garden_nlp.data.tokenization import build_tokenizer

_KEY_MAPPING = {
    "input_ids": "input_word_ids",
    "input_mask": "input_mask",
    "segment_ids": "input_type_ids",
}
_INT_PATTERN = r"[+-]?[0-9]+"
_FLOAT_PATTERN = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf)"
_TRUNCATORS = ("round_robin", "waterfall")


def _check_choice(value: str, choices: Sequence[str], field: str) -> None:
    if value not in choices:
        raise ConfigError(f"`{field}` = {value!r}: expected one of {', '.join(choices)}")


def _label_dtype(label_type: str) -> tf.DType:
    _check_choice(label_type, LABEL_TYPES, "label_type")
    return tf.int64 if label_type == "int" else tf.float32


class SentencePredictionDataLoader:
    """Reads sentence-prediction features from TFRecords (Model Garden's loader).

    Args:
        params: The `SentencePredictionDataConfig`.

    Raises:
        ConfigError: For an unknown `label_type` or `file_type`, or a `label_name` whose
            first entry is not `label_field`.
    """

    def __init__(self, params: SentencePredictionDataConfig):
        self._params = params
        self._label_dtype = _label_dtype(params.label_type)
        self._dataset_fn = tfrecord_lib.pick_dataset_fn(params.file_type)
        if params.label_name and params.label_name[0] != params.label_field:
            raise ConfigError(
                f"`label_name` = {list(params.label_name)!r} renames {params.label_name[0]!r}, "
                f"but the label is read from `label_field` = {params.label_field!r}"
            )

    def name_to_features_spec(self) -> dict[str, tf.io.FixedLenFeature]:
        """The tf.Example features read; subclasses may add more."""
        length = self._params.seq_length
        spec = {
            "input_ids": tf.io.FixedLenFeature([length], tf.int64),
            "input_mask": tf.io.FixedLenFeature([length], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([length], tf.int64),
            self._params.label_field: tf.io.FixedLenFeature([], self._label_dtype),
        }
        if self._params.include_example_id:
            spec["example_id"] = tf.io.FixedLenFeature([], tf.int64)
        return spec

    def _decode(self, record: tf.Tensor) -> dict[str, tf.Tensor]:
        return tfrecord_lib.decode_example(record, self.name_to_features_spec())

    def _parse(self, record: Mapping[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        label_field = self._params.label_field
        features = {}
        for key, value in record.items():
            if key != label_field:
                features[_KEY_MAPPING.get(key, key)] = value
        if self._params.label_name:
            features[self._params.label_name[1]] = record[label_field]
        return features, record[label_field]

    def load(self, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """The batched dataset of `(features, labels)` for one input pipeline."""
        reader = InputReader(
            self._params,
            dataset_fn=self._dataset_fn,
            decoder_fn=self._decode,
            parser_fn=self._parse,
        )
        return reader.read(input_context)


class TextProcessor(tf.Module):
    """Tokenizes text segments and packs them into BERT encoder inputs.

    Runs inside `tf.data` maps and exported functions. Segments are packed as
    `[CLS] A [SEP] B [SEP] ...` with type ids 0, 1, ... per segment, truncated to
    `seq_length` by `truncator`, and padded.

    Args:
        seq_length: The packed length.
        vocab_file: The WordPiece vocabulary, or the SentencePiece model file.
        tokenization: `WordPiece` or `SentencePiece`.
        lower_case: Lower-case (and strip accents from) the text first.
        truncator: `round_robin` or `waterfall`.
        vocab_field: The config field that named `vocab_file`, for error messages.
    """

    def __init__(
        self,
        seq_length: int,
        vocab_file: str,
        tokenization: str = "WordPiece",
        lower_case: bool = True,
        truncator: str = "round_robin",
        vocab_field: str = "vocab_file",
    ):
        super().__init__(name="text_processor")
        _check_choice(truncator, _TRUNCATORS, "truncator")
        from garden_nlp import text  # Loads tensorflow_text only where text is tokenized.

        self.tokenizer = build_tokenizer(tokenization, vocab_file, lower_case, field=vocab_field)
        self.packer = text.BertPackInputs(
            seq_length=seq_length,
            special_tokens_dict=self.tokenizer.get_special_tokens_dict(),
            truncator=truncator,
        )

    def __call__(self, segments: Sequence[tf.Tensor]) -> dict[str, tf.Tensor]:
        """Packs string tensors `[batch]` (one per segment) into int32 `[batch, seq_length]`s."""
        tokenized = []
        for segment in segments:
            ids = self.tokenizer(segment)
            if ids.shape.rank > 2:
                ids = ids.merge_dims(1, -1)
            tokenized.append(tf.cast(ids, tf.int32))
        return self.packer(tokenized)


def read_header(path: str, file_type: str) -> list[str]:
    """The column names in the first row of a TSV or CSV file.

    Raises:
        ValueError: If the file cannot be read or is empty, naming it.
    """
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            line = f.readline()
    except (tf.errors.OpError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the header row of {path!r}: {error}") from None
    line = line.lstrip("\ufeff").rstrip("\r\n")
    if not line:
        raise ValueError(f"{path!r} has no header row naming its columns")
    if file_type == "tsv":
        return line.split("\t")
    return next(csv.reader([line]))


class SentencePredictionTextDataLoader:
    """Reads raw sentence-prediction text and tokenizes it in the pipeline.

    Args:
        params: The `SentencePredictionTextDataConfig`.

    Raises:
        ConfigError: For a config that names no text fields, both or neither of
            `input_path` and `tfds_name`, an unknown `file_type`, `label_type`,
            `tokenization` or `truncator`, a `label_list` with float labels, or a missing
            vocabulary file.
    """

    def __init__(self, params: SentencePredictionTextDataConfig):
        if not params.text_fields:
            raise ConfigError("`text_fields` is empty; name the one or two text columns")
        if bool(params.tfds_name) == bool(params.input_path):
            raise ConfigError("set exactly one of `input_path` and `tfds_name` (with `tfds_split`)")
        _check_choice(params.file_type, FILE_TYPES + TEXT_FILE_TYPES, "file_type")
        self._label_dtype = _label_dtype(params.label_type)
        if params.label_list is not None:
            if params.label_type != "int":
                raise ConfigError(
                    "`label_list` maps label names to class ids; it needs `label_type` int, "
                    f"not {params.label_type!r}"
                )
            if len(set(params.label_list)) != len(params.label_list) or not params.label_list:
                raise ConfigError(f"`label_list` = {params.label_list!r}: names must be unique")
        self._params = params
        self._processor = TextProcessor(
            seq_length=params.seq_length,
            vocab_file=params.vocab_file,
            tokenization=params.tokenization,
            lower_case=params.lower_case,
            truncator=params.truncator,
        )
        self._columns: list[tuple[int, str]] = []
        self._label_table = None
        if params.label_list is not None:
            self._label_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(params.label_list),
                    tf.range(len(params.label_list), dtype=tf.int64),
                ),
                default_value=-1,
            )

    @property
    def _needed_columns(self) -> list[str]:
        columns = list(self._params.text_fields) + [self._params.label_field]
        if self._params.include_example_id:
            columns.append("example_id")
        return columns

    # Labels and ids.

    def _label_from_string(self, value: tf.Tensor, source: Any) -> tf.Tensor:
        field = self._params.label_field
        if self._label_table is not None:
            label = self._label_table.lookup(value)
            check = tf.debugging.Assert(
                tf.reduce_all(label >= 0),
                [f"`{field}` holds a label not in `label_list` in", source, "value:", value],
                summarize=8,
            )
            with tf.control_dependencies([check]):
                return tf.cast(tf.identity(label), tf.int32)
        return self._number(value, self._params.label_type, field, source)

    @staticmethod
    def _number(value: tf.Tensor, label_type: str, column: str, source: Any) -> tf.Tensor:
        stripped = tf.strings.strip(value)
        pattern = _INT_PATTERN if label_type == "int" else _FLOAT_PATTERN
        kind = "an integer" if label_type == "int" else "a number"
        check = tf.debugging.Assert(
            tf.reduce_all(tf.strings.regex_full_match(tf.strings.lower(stripped), pattern)),
            [f"column `{column}` holds a value that is not {kind} in", source, "value:", value],
            summarize=8,
        )
        with tf.control_dependencies([check]):
            if label_type == "int":
                return tf.strings.to_number(stripped, tf.int32)
            return tf.strings.to_number(stripped, tf.float32)

    def _label(self, value: tf.Tensor, source: Any) -> tf.Tensor:
        if value.dtype == tf.string:
            return self._label_from_string(value, source)
        if self._label_table is not None:
            raise ConfigError(
                f"`label_list` is set but `{self._params.label_field}` holds numbers "
                f"({value.dtype.name}); remove `label_list`"
            )
        return tf.cast(value, tf.int32 if self._params.label_type == "int" else tf.float32)

    # Sources.

    def _check_headers(self, files: Sequence[str]) -> None:
        file_type = self._params.file_type
        first = read_header(files[0], file_type)
        for path in files[1:]:
            header = read_header(path, file_type)
            if header != first:
                raise ValueError(
                    f"{path!r} has the columns {header}, but {files[0]!r} has {first}; every "
                    "input file must have the same header row"
                )
        positions = {}
        for column in self._needed_columns:
            if column not in first:
                raise ValueError(
                    f"{files[0]!r} has no column {column!r} (its columns: {', '.join(first)})"
                )
            positions[first.index(column)] = column
        self._columns = sorted(positions.items())

    def _read_text_file(self, path: tf.Tensor) -> tf.data.Dataset:
        indices = [index for index, _ in self._columns]
        names = [name for _, name in self._columns]
        dataset = tf.data.experimental.CsvDataset(
            path,
            record_defaults=[tf.constant("", tf.string)] * len(indices),
            header=True,
            field_delim="\t" if self._params.file_type == "tsv" else ",",
            use_quote_delim=self._params.file_type == "csv",
            select_cols=indices,
        )

        def to_record(*values: tf.Tensor) -> dict[str, tf.Tensor]:
            row = dict(zip(names, values, strict=True))
            record = {name: row[name] for name in self._params.text_fields}
            record["label"] = self._label(row[self._params.label_field], path)
            if self._params.include_example_id:
                record["example_id"] = self._number(row["example_id"], "int", "example_id", path)
            return record

        return dataset.map(to_record)

    def _decode_example(self, record: tf.Tensor) -> dict[str, tf.Tensor]:
        params = self._params
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in params.text_fields}
        label_dtype = tf.string if self._label_table is not None else self._label_dtype
        spec[params.label_field] = tf.io.FixedLenFeature([], label_dtype)
        if params.include_example_id:
            spec["example_id"] = tf.io.FixedLenFeature([], tf.int64)
        example = tf.io.parse_single_example(record, spec)
        return self._select(example, "a TFRecord")

    def _select(self, example: Mapping[str, tf.Tensor], source: str) -> dict[str, tf.Tensor]:
        params = self._params
        for name in self._needed_columns:
            if name not in example:
                raise ConfigError(
                    f"the TFDS dataset {params.tfds_name!r} has no feature {name!r} "
                    f"(its features: {', '.join(example)})"
                )
        record = {name: example[name] for name in params.text_fields}
        record["label"] = self._label(example[params.label_field], source)
        if params.include_example_id:
            record["example_id"] = tf.cast(example["example_id"], tf.int32)
        return record

    def _preprocess(self, batch: Mapping[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        features = self._processor([batch[name] for name in self._params.text_fields])
        if self._params.include_example_id:
            features["example_id"] = batch["example_id"]
        return features, batch["label"]

    def load(self, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """The batched dataset of `(features, labels)` for one input pipeline.

        Raises:
            ValueError: If a TSV or CSV file lacks a needed column (naming the file and
                the column) or the files' header rows differ.
        """
        params = self._params
        text_files = bool(params.input_path) and params.file_type in TEXT_FILE_TYPES
        if text_files:
            dataset_fn, decoder_fn = self._read_text_file, None
        elif params.input_path:
            dataset_fn = tfrecord_lib.pick_dataset_fn(params.file_type)
            decoder_fn = self._decode_example
        else:
            dataset_fn = tf.data.TFRecordDataset
            decoder_fn = lambda example: self._select(example, "TFDS")  # noqa: E731
        reader = InputReader(
            params, dataset_fn=dataset_fn, decoder_fn=decoder_fn, postprocess_fn=self._preprocess
        )
        if text_files:
            files = reader.files
            if isinstance(files, dict):
                raise ConfigError(
                    "`input_path` as a dict of named inputs is not read from TSV or CSV files; "
                    "give one pattern or a list"
                )
            self._check_headers(files)
        return reader.read(input_context)
