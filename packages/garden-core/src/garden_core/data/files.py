"""Resolving `DataConfig.input_path` into the list of files an input pipeline reads.

`input_path` follows Model Garden's grammar: one pattern, a comma-separated list of patterns,
or a list of either. Each pattern is expanded with `tf.io.gfile.glob`, so local paths and
remote file systems (`gs://...`) work alike. A pattern that matches nothing is an
`InputNotFoundError` naming the pattern and the config field, raised when the reader is
built rather than deep inside `tf.data` at the first training step.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

_GLOB_CHARACTERS = ("*", "?", "[")


class InputNotFoundError(ValueError):
    """An input named by a `DataConfig` (file pattern or TFDS dataset) does not exist."""


def match_files(input_path: str | Sequence[str], field: str = "input_path") -> list[str]:
    """Returns the files `input_path` names, in the order its patterns are given.

    Matches of one glob are sorted, so every worker of a distributed job sees the same list
    and shards it the same way. Files are not de-duplicated: naming a file twice reads it
    twice.

    Args:
        input_path: A file path or glob, a comma-separated list of them, or a list of either.
        field: The dotted `DataConfig` field `input_path` came from, used in error messages
            (for example `input_path.coco` for one entry of a dict of named inputs).

    Returns:
        The matched file paths.

    Raises:
        ValueError: If `input_path` is empty or not a string or a list of strings.
        InputNotFoundError: If a pattern matches no file, or a plain path is a directory.
    """
    if isinstance(input_path, str):
        entries = [input_path]
    elif isinstance(input_path, Sequence) and all(isinstance(p, str) for p in input_path):
        entries = list(input_path)
    else:
        raise ValueError(
            f"`DataConfig.{field}` must be a file pattern, a comma-separated list of patterns "
            f"or a list of them; got {input_path!r}"
        )
    patterns = [p.strip() for entry in entries for p in entry.split(",") if p.strip()]
    if not patterns:
        raise ValueError(f"`DataConfig.{field}` names no file pattern (got {input_path!r})")

    files: list[str] = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise InputNotFoundError(f"`DataConfig.{field}` pattern {pattern!r} matches no file")
        if not any(c in pattern for c in _GLOB_CHARACTERS) and tf.io.gfile.isdir(pattern):
            raise InputNotFoundError(
                f"`DataConfig.{field}` names the directory {pattern!r}, not files; "
                f"use a glob such as '{pattern.rstrip('/')}/*'"
            )
        files.extend(matched)
    return files
