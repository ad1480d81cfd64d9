"""Naming the input file behind a `tf.errors.DataLossError`.

When `tf.data` meets a corrupt or truncated TFRecord it raises `DataLossError` with a
message such as "corrupted record at 245" or "truncated record at 441": a byte offset, but
not the file (TensorFlow 2.21 reads many files through one interleaved iterator and does
not say which one failed). Garden recovers the name after the fact: `find_corrupt_files`
reads each candidate file on its own, eagerly, and reports the ones that fail;
`explain_data_error` turns the original error into a `CorruptRecordError` listing them.
Scanning reads every file once, so it runs only after a failure, never up front.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Callable, Iterable

import tensorflow as tf

_MAX_SCAN_THREADS = 8


class CorruptRecordError(tf.errors.DataLossError):
    """A `DataLossError` that names the input files holding corrupt or truncated records.

    Attributes:
        bad_files: Each corrupt file mapped to what reading it reported, for example
            `{"/data/train-3.tfrecord": "corrupted record at 245"}`. Empty when a rescan
            found every file readable.
    """

    def __init__(self, message: str, bad_files: dict[str, str] | None = None):
        """Creates the error.

        Args:
            message: The full error message.
            bad_files: Each corrupt file mapped to what reading it reported.
        """
        super().__init__(None, None, message)
        self.bad_files = dict(bad_files or {})

    def __reduce__(self):
        return type(self), (self.message, self.bad_files)


def short_error_message(error: BaseException) -> str:
    """Returns an op error's message without TensorFlow's function-node and op decorations.

    Args:
        error: Any exception; for a `tf.errors.OpError` its `message` is used.

    Returns:
        The first line of the message, such as "corrupted record at 245".
    """
    text = error.message if isinstance(error, tf.errors.OpError) else str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\].*", "", text, flags=re.DOTALL)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _read_error(file: str, dataset_fn: Callable[[str], tf.data.Dataset]) -> str | None:
    """Reads every record of one file; returns why that failed, or None if it did not."""
    try:
        dataset_fn(file).reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        return short_error_message(error)
    return None


def find_corrupt_files(
    files: Iterable[str],
    dataset_fn: Callable[[str], tf.data.Dataset] = tf.data.TFRecordDataset,
) -> dict[str, str]:
    """Reads each file on its own and returns the ones that cannot be read to the end.

    Files are read eagerly, a few at a time in threads, each through its own
    `dataset_fn(file)`; no records are decoded.

    Args:
        files: The file paths to check, for example `InputReader.files`.
        dataset_fn: Builds a dataset of raw records from one file path; the same function the
            input pipeline reads with (for example a `functools.partial` of
            `tf.data.TFRecordDataset` with `compression_type="GZIP"`).

    Returns:
        Each corrupt file, in the order given, mapped to what reading it reported (for
        example "corrupted record at 245"). Empty if every file reads cleanly.
    """
    files = list(dict.fromkeys(files))
    if not files:
        return {}
    threads = min(_MAX_SCAN_THREADS, len(files))
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        reports = list(pool.map(lambda f: _read_error(f, dataset_fn), files))
    return {f: report for f, report in zip(files, reports, strict=True) if report is not None}


def explain_data_error(
    error: tf.errors.DataLossError,
    files: Iterable[str],
    dataset_fn: Callable[[str], tf.data.Dataset] = tf.data.TFRecordDataset,
    source: str = "DataConfig.input_path",
) -> CorruptRecordError:
    """Returns a `CorruptRecordError` naming which of `files` caused `error`.

    Args:
        error: The `DataLossError` raised while iterating the input pipeline.
        files: Every file the pipeline reads.
        dataset_fn: Builds a dataset of raw records from one file path (see
            `find_corrupt_files`).
        source: Where the files came from, for the message.

    Returns:
        The error to raise (`raise explained from error`). When the rescan finds no corrupt
        file it still returns a `CorruptRecordError`, with empty `bad_files`, whose message
        says so.
    """
    files = list(dict.fromkeys(files))
    original = short_error_message(error)
    bad_files = find_corrupt_files(files, dataset_fn)
    if bad_files:
        listing = "\n".join(f"  {file}: {report}" for file, report in bad_files.items())
        message = (
            f"{len(bad_files)} of {len(files)} input files ({source}) hold corrupt or "
            f"truncated records:\n{listing}\n"
            f"Regenerate or remove them. (The input pipeline failed with: {original}.)"
        )
    elif files:
        message = (
            f"The input pipeline failed with '{original}', but reading each of its "
            f"{len(files)} files ({source}) again found none corrupt; a file may have changed "
            "while it was read."
        )
    else:
        message = (
            f"The input pipeline failed with '{original}'; it reads no files Garden knows of "
            "(the dataset was passed in), so the corrupt source cannot be named."
        )
    return CorruptRecordError(message, bad_files)
