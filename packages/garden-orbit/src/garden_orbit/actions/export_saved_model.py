"""Provides the `ExportSavedModel` action and the `ExportFileManager` that names exports.

`ExportFileManager` hands out numbered paths `{base_name}-{id}` and deletes the oldest ones
beyond a limit; `ExportSavedModel` writes a SavedModel to the next such path each time it is
called. Exports are crash-safe: a SavedModel is written into a temporary sibling directory
whose name `ExportFileManager` never lists, and renamed into place only once complete, so a
job killed mid-export never leaves a half-written export where a serving system or
`managed_files` would pick it up. Leftover temporary directories are removed by
`ExportFileManager.clean_up`.

All file operations go through `tf.io.gfile`, so paths may be local or on any file system
TensorFlow supports (for example `gs://`). On local and other POSIX file systems the final
rename is atomic. Object stores such as GCS rename a directory by copying it file by file, so
there a reader listing the bucket during that copy can briefly see a partial export, and a
kill during the copy can leave one behind.
"""

from __future__ import annotations

import operator
import os
import posixpath
import re
import uuid
from collections.abc import Callable
from typing import Any

from absl import logging

from garden_orbit import runner
from garden_orbit._tensorflow import tf
from garden_orbit.utils import atomic_write

# Marks a directory that an export is being written into; it follows the final name, so
# `{base_name}-{id}.tmp-{pid}-{random}` can never match the `{base_name}-{digits}` pattern.
_TEMPORARY_MARKER = ".tmp-"


def _normalize(path: str) -> str:
    """Normalizes `path` like `os.path.normpath`, keeping a `scheme://` prefix intact."""
    path = os.fspath(path)
    if "://" in path:
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}"
    return os.path.normpath(path)


def _temporary_path(path: str) -> str:
    """Returns a unique sibling of `path` to write into before renaming it to `path`."""
    return f"{path.rstrip('/')}{_TEMPORARY_MARKER}{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _list_directory(directory: str) -> list[str]:
    """Returns the entries of `directory` (without trailing slashes), or [] if it is absent."""
    try:
        entries = tf.io.gfile.listdir(directory or ".")
    except tf.errors.NotFoundError:
        return []
    return [entry.rstrip("/") for entry in entries]


def _remove(path: str) -> None:
    """Deletes a file or a directory tree."""
    if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    else:
        tf.io.gfile.remove(path)


def _as_id(value: Any) -> int:
    """Validates an export id returned by `next_id_fn` and returns it as an int."""
    if isinstance(value, bool):
        raise TypeError(f"ExportFileManager: next_id_fn must return an integer, got {value!r}.")
    try:
        export_id = operator.index(value)  # Accepts int and NumPy integer scalars.
    except TypeError:
        raise TypeError(
            f"ExportFileManager: next_id_fn must return an integer, got {value!r}."
        ) from None
    if export_id < 0:
        raise ValueError(
            f"ExportFileManager: next_id_fn returned {export_id}; export ids must be >= 0 so "
            "that the export can be found and cleaned up."
        )
    return export_id


class ExportFileManager:
    """Names and cleans up a group of exports sharing a base name.

    Exports are named `{base_name}-{id}` (with `subdirectory`, the export lives at
    `{base_name}-{id}/{subdirectory}`), where ids are non-negative integers that order the
    exports from oldest to newest. Subclass it for other naming or retention schemes:
    `ExportSavedModel` only calls `next_name` and `clean_up`.

    A base name should have a single writer: `clean_up` deletes temporary directories left
    by unfinished exports, including one that another process might be writing.
    """

    def __init__(
        self,
        base_name: str,
        max_to_keep: int = 5,
        next_id_fn: Callable[[], int] | None = None,
        subdirectory: str | None = None,
    ):
        """Initializes the instance.

        Args:
          base_name: The shared path prefix of the exports, for example
            "/model_dir/export/saved_model" or "gs://bucket/run/saved_model"; exports are
            named `{base_name}-{id}`.
          max_to_keep: How many of the newest exports `clean_up` keeps; the older ones are
            deleted. Zero or a negative number keeps every export.
          next_id_fn: An optional callable returning the id of the next export, for example
            `global_step.numpy` to number exports by training step. Ids must be non-negative
            integers and should increase. If None, the next id is one more than the largest
            id found on disk or handed out before by this instance (starting at 0).
          subdirectory: An optional path inside each `{base_name}-{id}` directory where the
            export itself lives; then `managed_files` lists `{base_name}-{id}/{subdirectory}`
            paths that exist, and `clean_up` deletes only those subdirectories.

        Raises:
          ValueError: If `base_name` has no name part (such as "/") or `subdirectory` is
            absolute.
        """
        self._base_name = _normalize(base_name)
        self._directory, prefix = os.path.split(self._base_name)
        if not prefix:
            raise ValueError(
                f"ExportFileManager: base_name {base_name!r} must end with a name prefix for "
                "the exports, such as 'saved_model'."
            )
        self._id_pattern = re.compile(re.escape(prefix) + r"-(\d+)")
        self._max_to_keep = int(max_to_keep)
        self._next_id_fn = next_id_fn
        self._subdirectory = _normalize(subdirectory) if subdirectory else None
        if self._subdirectory is not None and (
            os.path.isabs(self._subdirectory) or "://" in self._subdirectory
        ):
            raise ValueError(
                f"ExportFileManager: subdirectory {subdirectory!r} must be a relative path."
            )
        # The smallest id the default numbering may hand out next.
        self._next_default_id = 0

    @property
    def base_name(self) -> str:
        """The normalized shared path prefix of the exports."""
        return self._base_name

    @property
    def max_to_keep(self) -> int:
        """How many exports `clean_up` keeps (zero or negative: all of them)."""
        return self._max_to_keep

    def _existing_ids(self) -> list[tuple[int, str]]:
        """Returns `(id, path)` for every `{base_name}-{digits}` entry, sorted by id."""
        found = []
        for entry in _list_directory(self._directory):
            match = self._id_pattern.fullmatch(entry)
            if match:
                found.append((int(match.group(1)), os.path.join(self._directory, entry)))
        found.sort()
        return found

    def _export_path(self, id_path: str) -> str:
        """Returns where the export of the `{base_name}-{id}` entry `id_path` lives."""
        if self._subdirectory is None:
            return id_path
        return os.path.join(id_path, self._subdirectory)

    @property
    def managed_files(self) -> list[str]:
        """The existing exports, oldest (smallest id) first.

        Only entries named `{base_name}-{id}` with an all-digit id count; temporary
        directories of unfinished exports never match. With `subdirectory`, an entry counts
        only if its `{base_name}-{id}/{subdirectory}` path exists, and that path is listed.
        """
        paths = [self._export_path(id_path) for _, id_path in self._existing_ids()]
        if self._subdirectory is not None:
            paths = [path for path in paths if tf.io.gfile.exists(path)]
        return paths

    def next_name(self) -> str:
        """Returns the path for a new export, `{base_name}-{id}` (plus `subdirectory`).

        Returns:
          The path. The default numbering never returns the same id twice, even if the
          previous path was not written.
        """
        if self._next_id_fn is not None:
            export_id = _as_id(self._next_id_fn())
        else:
            existing = self._existing_ids()
            on_disk = existing[-1][0] + 1 if existing else 0
            export_id = max(on_disk, self._next_default_id)
            self._next_default_id = export_id + 1
        return self._export_path(f"{self._base_name}-{export_id}")

    def _stale_temporaries(self) -> list[str]:
        """Returns the temporary paths that unfinished exports left behind."""
        if self._subdirectory is None:
            parents = [self._directory]
            pattern = re.compile(
                self._id_pattern.pattern + re.escape(_TEMPORARY_MARKER) + r".+", re.DOTALL
            )
        else:
            sub_parent, sub_name = os.path.split(self._subdirectory)
            parents = [os.path.join(id_path, sub_parent) for _, id_path in self._existing_ids()]
            pattern = re.compile(re.escape(sub_name + _TEMPORARY_MARKER) + r".+", re.DOTALL)
        stale = []
        for parent in parents:
            for entry in _list_directory(parent):
                if pattern.fullmatch(entry):
                    stale.append(os.path.join(parent, entry))
        return stale

    def clean_up(self) -> None:
        """Deletes leftover temporary directories and all but the newest `max_to_keep` exports.

        With `subdirectory`, only the `{base_name}-{id}/{subdirectory}` paths are deleted;
        the `{base_name}-{id}` directories remain.
        """
        for path in self._stale_temporaries():
            logging.info("ExportFileManager: removing unfinished export %s", path)
            _remove(path)
        if self._max_to_keep <= 0:
            return
        for path in self.managed_files[: -self._max_to_keep]:
            logging.info("ExportFileManager: removing old export %s", path)
            _remove(path)


class ExportSavedModel:
    """An action that exports a model as a SavedModel to a new numbered path.

    Each call writes `tf.saved_model.save(model, path, signatures=..., options=...)` to
    `file_manager.next_name()` and then calls `file_manager.clean_up()`. The SavedModel is
    first written to a temporary sibling directory and renamed into place when complete,
    so an interrupted export never appears under the final name.

    Attributes:
      model: The model passed to `__init__`.
      file_manager: The file manager passed to `__init__`.
      signatures: The signatures passed to `__init__`.
      options: The save options passed to `__init__`.
    """

    def __init__(
        self,
        model: tf.Module,
        file_manager: ExportFileManager,
        signatures: Any,
        options: tf.saved_model.SaveOptions | None = None,
    ):
        """Initializes the instance.

        Args:
          model: The `tf.Module` (or other trackable object) to export.
          file_manager: An `ExportFileManager` (or an object with the same `next_name` and
            `clean_up` methods) that names the exports and deletes old ones.
          signatures: The `signatures` argument of `tf.saved_model.save`: a
            `tf.function` with an input signature, a concrete function, a dict of them, or
            None to use the model's default.
          options: Optional `tf.saved_model.SaveOptions` passed to `tf.saved_model.save`.
        """
        self.model = model
        self.file_manager = file_manager
        self.signatures = signatures
        self.options = options
        self._last_export_path: str | None = None

    @property
    def last_export_path(self) -> str | None:
        """The path of the most recent successful export by this action, or None."""
        return self._last_export_path

    def __call__(self, output: runner.Output) -> str:
        """Exports the model to the file manager's next path, then cleans up old exports.

        Args:
          output: The train or eval output that triggered the export (unused).

        Returns:
          The path of the new export.

        Raises:
          FileExistsError: If the path the file manager named already exists (for example
            when `next_id_fn=global_step.numpy` and two exports happen at the same step).
        """
        del output  # The export does not depend on the metrics.
        export_path = self.file_manager.next_name()
        if tf.io.gfile.exists(export_path):
            raise FileExistsError(
                f"ExportSavedModel: {export_path} already exists and will not be overwritten; "
                "the file manager must name a new path for every export (an id derived from "
                "the global step repeats when exporting twice at the same step)."
            )
        try:
            with atomic_write.atomic_directory(
                export_path, temporary=_temporary_path(export_path)
            ) as temporary_path:
                tf.saved_model.save(
                    self.model, temporary_path, signatures=self.signatures, options=self.options
                )
        except FileExistsError as error:
            raise FileExistsError(f"ExportSavedModel: {error}") from error
        self._last_export_path = export_path
        logging.info("ExportSavedModel: exported a SavedModel to %s", export_path)
        self.file_manager.clean_up()
        return export_path
