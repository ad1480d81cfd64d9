"""Converts fine-tuning data into the TFRecords the garden-nlp input pipelines read.

Model Garden's `create_finetuning_data.py` for Garden, one input file at a time:

* `--task_type=classification` (or `regression`): a TSV or CSV file whose first row names
  the columns; `--text_fields` names the one or more text columns (packed as
  `[CLS] A [SEP] B [SEP]`, truncated longest-first as BERT does) and `--label_field` the
  label column: class ids, class names listed in `--label_list`, or (regression) numbers.
  Records hold `input_ids`, `input_mask`, `segment_ids`, `label_ids` (int64, or float for
  regression) and `example_id` (the row's index), for `SentencePredictionDataLoader`.
* `--task_type=squad`: a SQuAD 1.1 / 2.0 JSON file to window features with
  `--max_seq_length`, `--doc_stride`, `--max_query_length` (see
  `garden_nlp.data.squad_features`); `--no-is_training` writes evaluation features (with
  `unique_ids`, without answer positions). For `QuestionAnsweringDataLoader`.
* `--task_type=tagging`: CoNLL-style text (a word and its tag per line, blank lines
  between sentences) with the tag names in `--label_list`; long sentences are split.
  For `TaggingDataLoader`.

Text is tokenized with the `garden_nlp.text` tokenizers (`--tokenization WordPiece` with a
vocabulary file, or `SentencePiece` with a model file, both given as `--vocab_file`), the
same ones the raw-text pipelines use. The output file is written under a temporary name
and renamed when complete. `--meta_data_file_path` also writes Model Garden's input meta
data (sizes, lengths, label names) as JSON. Bad input ends with a one-line error naming
the file, line or column at fault, and exit status 1.

Usage:

    garden-create-finetuning-data --task_type=classification --input_file=train.tsv \\
        --output_file=train.tfrecord --vocab_file=vocab.txt --max_seq_length=128 \\
        --text_fields=sentence1,sentence2 --label_list=contradiction,entailment,neutral
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import tensorflow as tf

from garden_core.config import ConfigError
from garden_nlp.configs.data import TOKENIZATIONS
from garden_nlp.data import (
    squad_features,
    squad_postprocess,
    squad_reader,
    tagging_dataloader,
    tfrecord_lib,
)
from garden_nlp.data.tokenization import FullTokenizer

TASK_TYPES = ("classification", "regression", "squad", "tagging")
"""Values of `--task_type`."""

_PROG = "create_finetuning_data"
_ROWS_PER_BATCH = 256


class FinetuningDataError(Exception):
    """Bad input for `create_finetuning_data`; the message is one line."""


def _split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def read_rows(path: str, file_type: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and the `(line number, fields)` rows of a TSV or CSV file.

    TSV fields are split on tabs only (quotes are plain characters); CSV fields may be
    double-quoted.

    Raises:
        FinetuningDataError: If the file cannot be read or has no header row.
    """
    try:
        handle = tf.io.gfile.GFile(path, "r")
        text = handle.read()
    except (tf.errors.OpError, OSError, UnicodeDecodeError) as error:
        raise FinetuningDataError(f"cannot read --input_file {path!r}: {error}") from None
    lines = text.lstrip("\ufeff").splitlines()
    if file_type == "tsv":
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(lines)
    header = next(reader, None)
    if not header:
        raise FinetuningDataError(f"{path} has no header row naming its columns")
    return header, ((reader.line_num, row) for row in reader if row)


def truncate_longest_first(segments: list[list[int]], budget: int) -> None:
    """Drops tokens from the end of the longest segment (the last of equals) until they fit."""
    while sum(len(s) for s in segments) > budget:
        longest = max(range(len(segments)), key=lambda i: (len(segments[i]), i))
        segments[longest].pop()


def pack_segments(
    segments: list[list[int]], tokenizer: FullTokenizer, max_seq_length: int
) -> dict[str, list[int]]:
    """`[CLS] A [SEP] B [SEP] ...` ids, mask and segment ids, padded to `max_seq_length`."""
    segments = [list(s) for s in segments]
    truncate_longest_first(segments, max_seq_length - len(segments) - 1)
    input_ids = [tokenizer.token_id("[CLS]")]
    segment_ids = [0]
    for type_id, segment in enumerate(segments):
        input_ids.extend([*segment, tokenizer.token_id("[SEP]")])
        segment_ids.extend([type_id] * (len(segment) + 1))
    padding = max_seq_length - len(input_ids)
    pad_id = tokenizer.special_tokens.get("padding_id", 0)
    return {
        "input_ids": input_ids + [pad_id] * padding,
        "input_mask": [1] * len(input_ids) + [0] * padding,
        "segment_ids": segment_ids + [0] * padding,
    }


def _label_value(value: str, where: str, args: argparse.Namespace, labels: dict[str, int]):
    if labels:
        if value not in labels:
            raise FinetuningDataError(
                f"{where}: label {value!r} is not in --label_list ({', '.join(labels)})"
            )
        return labels[value]
    try:
        return float(value) if args.task_type == "regression" else int(value)
    except ValueError:
        kind = "a number" if args.task_type == "regression" else "a class id"
        raise FinetuningDataError(
            f"{where}: label {value!r} in column {args.label_field!r} is not {kind}; "
            "give --label_list to map label names to ids"
        ) from None


def _classification_records(
    args: argparse.Namespace, tokenizer: FullTokenizer
) -> Iterator[dict[str, Any]]:
    file_type = args.file_type or ("csv" if args.input_file.endswith(".csv") else "tsv")
    header, rows = read_rows(args.input_file, file_type)
    text_fields = _split_list(args.text_fields)
    if not text_fields:
        raise FinetuningDataError("--text_fields names no column; give e.g. sentence1,sentence2")
    columns = []
    for name in [*text_fields, args.label_field]:
        if name not in header:
            raise FinetuningDataError(
                f"{args.input_file} has no column {name!r} (its columns: {', '.join(header)})"
            )
        columns.append(header.index(name))
    labels = {name: i for i, name in enumerate(_split_list(args.label_list))}
    if labels and args.task_type == "regression":
        raise FinetuningDataError("--label_list names classes; regression labels are numbers")
    index = 0
    batch: list[tuple[int, list[str]]] = []

    def flush() -> Iterator[dict[str, Any]]:
        nonlocal index
        texts = [[row[c] for (_, row) in batch] for c in columns[:-1]]
        tokenized = [tokenizer.tokenize_ids(t) for t in texts]
        for i, (line, row) in enumerate(batch):
            where = f"{args.input_file}:{line}"
            label = _label_value(row[columns[-1]].strip(), where, args, labels)
            record: dict[str, Any] = pack_segments(
                [segment[i] for segment in tokenized], tokenizer, args.max_seq_length
            )
            record["label_ids"] = (
                tfrecord_lib.float_feature(label)
                if isinstance(label, float)
                else tfrecord_lib.int_feature(label)
            )
            record["example_id"] = index
            index += 1
            yield record

    for line, row in rows:
        if len(row) != len(header):
            raise FinetuningDataError(
                f"{args.input_file}:{line}: {len(row)} fields, but the header names "
                f"{len(header)} columns"
            )
        batch.append((line, row))
        if len(batch) == _ROWS_PER_BATCH:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def convert(args: argparse.Namespace) -> dict[str, Any]:
    """Converts `args.input_file` into `args.output_file`; returns the input meta data.

    Raises:
        FinetuningDataError: On bad input (the message is one line).
    """
    if args.max_seq_length < 3:
        raise FinetuningDataError(f"--max_seq_length must be at least 3; got {args.max_seq_length}")
    if not tf.io.gfile.exists(args.input_file):
        raise FinetuningDataError(f"--input_file {args.input_file!r} does not exist")
    try:
        tokenizer = FullTokenizer(args.vocab_file, args.do_lower_case, args.tokenization)
    except (ConfigError, ValueError, OSError) as error:
        raise FinetuningDataError(f"--vocab_file {args.vocab_file!r}: {error}") from None
    meta: dict[str, Any] = {"max_seq_length": args.max_seq_length}
    try:
        if args.task_type in ("classification", "regression"):
            count = tfrecord_lib.write_examples(
                args.output_file, _classification_records(args, tokenizer)
            )
            regression = args.task_type == "regression"
            label_list = _split_list(args.label_list)
            meta.update(task_type=args.task_type, label_type="float" if regression else "int")
            if label_list:
                meta.update(num_labels=len(label_list), label_list=label_list)
            elif regression:
                meta["num_labels"] = 1
        elif args.task_type == "squad":
            examples = squad_reader.read_squad_examples(
                args.input_file, args.is_training, args.version_2_with_negative
            )
            features = squad_features.convert_examples_to_features(
                examples,
                tokenizer,
                args.max_seq_length,
                args.doc_stride,
                args.max_query_length,
                args.is_training,
            )
            count, _ = squad_features.write_features(features, args.output_file, args.is_training)
            meta.update(
                task_type="bert_squad",
                max_query_length=args.max_query_length,
                doc_stride=args.doc_stride,
                version_2_with_negative=args.version_2_with_negative,
            )
        else:
            label_list = _split_list(args.label_list)
            if not label_list:
                raise FinetuningDataError("--label_list must name the tags, e.g. O,B-PER,I-PER")
            examples = tagging_dataloader.read_tagging_file(args.input_file, label_list)
            count = tagging_dataloader.write_tagging_tfrecord(
                examples, tokenizer, args.max_seq_length, args.output_file
            )
            meta.update(
                task_type="tagging",
                label_type="int",
                num_labels=len(label_list),
                label_list=label_list,
                label_shape=[args.max_seq_length],
            )
    except (ValueError, ConfigError) as error:
        raise FinetuningDataError(str(error).splitlines()[0]) from None
    except (tf.errors.OpError, OSError) as error:
        raise FinetuningDataError(f"cannot write {args.output_file!r}: {error}") from None
    meta["train_data_size" if args.is_training else "eval_data_size"] = count
    if args.meta_data_file_path:
        squad_postprocess.write_json(meta, args.meta_data_file_path)
    return meta


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Convert TSV/CSV, SQuAD JSON or CoNLL text into fine-tuning TFRecords.",
    )
    parser.add_argument("--task_type", choices=TASK_TYPES, required=True)
    parser.add_argument("--input_file", required=True, help="The file to convert.")
    parser.add_argument("--output_file", required=True, help="The TFRecord file to write.")
    parser.add_argument(
        "--vocab_file",
        required=True,
        help="WordPiece vocabulary, or SentencePiece model with --tokenization SentencePiece.",
    )
    parser.add_argument("--tokenization", choices=TOKENIZATIONS, default="WordPiece")
    parser.add_argument(
        "--do_lower_case",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Lower-case the text (uncased models; --no-do_lower_case for cased ones).",
    )
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument(
        "--meta_data_file_path", default=None, help="Where to write the input meta data JSON."
    )
    parser.add_argument(
        "--is_training",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="SQuAD: training features with answer positions (--no-is_training: evaluation).",
    )
    classification = parser.add_argument_group("classification / regression")
    classification.add_argument("--file_type", choices=("tsv", "csv"), default=None)
    classification.add_argument("--text_fields", help="Comma-separated text columns.")
    classification.add_argument("--label_field", default="label", help="The label column.")
    classification.add_argument(
        "--label_list", help="Comma-separated label (or tag) names, in id order."
    )
    squad = parser.add_argument_group("squad")
    squad.add_argument("--doc_stride", type=int, default=128)
    squad.add_argument("--max_query_length", type=int, default=64)
    squad.add_argument("--version_2_with_negative", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 on success, 1 on bad input).

    Args:
        argv: The arguments without the program name; None reads `sys.argv[1:]`. Usage
            errors exit through argparse with status 2, as usual.
    """
    args = _parser().parse_args(argv)
    try:
        meta = convert(args)
    except FinetuningDataError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    size = meta.get("train_data_size", meta.get("eval_data_size"))
    print(f"wrote {size} {args.task_type} records to {args.output_file}")
    return 0


def run() -> int:
    """The `garden-create-finetuning-data` console command: `main` on `sys.argv`."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
