"""Writes files and folders so that they appear under their name only when complete.

A reader of the destination sees the old content or the complete new content, never a part
of it; a process killed mid-write leaves the destination as it was. Everything is written
to a hidden temporary sibling (`.NAME.tmp-PID-RANDOM`, in the same folder, so the final
rename stays on one file system and globs such as `*.tfrecord` never match it) and renamed
over the destination at the end:

    with atomic_write("params.yaml") as f:          # a file object (text or bytes)
        f.write(text)

    write_text("params.yaml", text)                  # the same in one call
    write_bytes("model.tflite", flatbuffer)

    with atomic_path("train.tfrecord") as temporary:  # for writers that take a path
        with tf.io.TFRecordWriter(temporary) as writer:
            ...

    with atomic_directory("export/1") as temporary:  # a folder: SavedModel, checkpoint
        tf.saved_model.save(module, temporary)

Local files are flushed and `fsync`ed before `os.replace`, so the new content survives a
power loss once the call returns. Paths with a scheme (`gs://...`) go through `tf.io.gfile`;
there the rename is as atomic as the file system makes it (object stores copy a folder file
by file). On an error the temporary file or folder is removed and the error re-raised.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

from garden_orbit._tensorflow import tf

__all__ = [
    "TEMPORARY_MARKER",
    "atomic_directory",
    "atomic_path",
    "atomic_write",
    "temporary_sibling",
    "write_bytes",
    "write_directory",
    "write_text",
]

# Every temporary name holds this marker: `.NAME.tmp-PID-RANDOM`.
TEMPORARY_MARKER = ".tmp-"


def _is_remote(path: str) -> bool:
    return "://" in path


def _split(path: str) -> tuple[str, str]:
    path = os.fspath(path)
    if _is_remote(path):
        return posixpath.split(path.rstrip("/"))
    return os.path.split(path.rstrip(os.sep) or path)


def _join(directory: str, name: str) -> str:
    if _is_remote(directory):
        return posixpath.join(directory, name)
    return os.path.join(directory, name) if directory else name


def temporary_sibling(path: str | os.PathLike) -> str:
    """A new hidden name beside `path` to write into: `DIR/.NAME.tmp-PID-RANDOM`.

    The process id lets a cleanup tell whether the writer still runs.
    """
    directory, name = _split(os.fspath(path))
    if not name:
        raise ValueError(f"atomic write: {os.fspath(path)!r} does not name a file or folder")
    return _join(directory, f".{name}{TEMPORARY_MARKER}{os.getpid()}-{uuid.uuid4().hex[:12]}")


def _make_parent(path: str) -> None:
    directory, _ = _split(path)
    if directory:
        tf.io.gfile.makedirs(directory)


def _fsync_directory(directory: str) -> None:
    """Makes a rename in `directory` durable (POSIX only; elsewhere a no-op)."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _fsync_file(path: str) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _remove_quietly(path: str) -> None:
    try:
        if _is_remote(path):
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            elif tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
        elif os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    except (OSError, tf.errors.OpError):
        pass  # The original error matters more than a leftover temporary.


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path to write a file at by any means; renames it over `path`.

    Use it for writers that take a path (`tf.io.TFRecordWriter`, converters). On leaving
    the block without an error the temporary file is `fsync`ed (local paths) and renamed
    over `path`, replacing an existing file; on an error it is removed and `path` is left
    as it was. The parent folder is created if missing.

    Raises:
      FileNotFoundError: If the block ends without an error but wrote no file.
    """
    path = os.fspath(path)
    _make_parent(path)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        if not tf.io.gfile.exists(temporary):
            raise FileNotFoundError(f"atomic write of {path}: nothing was written to {temporary}")
        if _is_remote(path):
            tf.io.gfile.rename(temporary, path, overwrite=True)
        else:
            _fsync_file(temporary)
            os.replace(temporary, path)
            _fsync_directory(_split(path)[0])
    except BaseException:
        _remove_quietly(temporary)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Yields a file object; its content replaces `path` when the block ends without error.

    Args:
      path: The file to write; its folder is created if missing.
      mode: "w" (text) or "wb" (bytes).
      encoding: The text encoding; UTF-8 by default. Not allowed with "wb".

    Raises:
      ValueError: For a mode other than "w" or "wb", or an encoding with "wb".
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', not {mode!r}")
    if mode == "wb" and encoding is not None:
        raise ValueError("atomic_write: an encoding makes no sense with mode 'wb'")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as temporary:
        if _is_remote(temporary):
            with tf.io.gfile.GFile(temporary, mode) as f:
                yield f
        else:
            # O_EXCL: never write through a file (or link) someone else created there.
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(
                descriptor, mode, encoding=encoding, newline="" if "b" not in mode else None
            ) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Writes `text` to `path` atomically (see `atomic_write`)."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` atomically (see `atomic_write`)."""
    with atomic_write(path, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike, temporary: str | None = None, replace: bool = False
) -> Iterator[str]:
    """Yields a temporary folder path; renames the folder written there to `path`.

    Use it for SavedModels, checkpoints and other folders written by a library. By default
    the folder is never overwritten: if `path` exists when the block ends, the temporary
    folder is removed and FileExistsError raised. With `replace`, an existing `path` is
    moved aside to a temporary sibling, the new folder renamed into place and the old one
    then deleted; if the rename fails, the old folder is moved back. On an error the
    temporary folder is removed.

    Args:
      path: The folder to create; its parent is created if missing.
      temporary: The temporary path to use, for callers whose cleanup looks for a
        particular name; a sibling of `path`. By default `temporary_sibling(path)`.
      replace: Replace an existing folder at `path` instead of refusing to.

    Raises:
      FileExistsError: Without `replace`, if `path` exists (checked before and after
        writing).
      FileNotFoundError: If the block ends without an error but created no folder.
    """
    path = os.fspath(path).rstrip("/") or os.fspath(path)
    if tf.io.gfile.exists(path) and not replace:
        raise FileExistsError(f"{path} already exists and will not be overwritten")
    _make_parent(path)
    temporary = temporary or temporary_sibling(path)
    try:
        yield temporary
        if not tf.io.gfile.isdir(temporary):
            raise FileNotFoundError(f"atomic write of {path}: no folder was written at {temporary}")
        previous = None
        if tf.io.gfile.exists(path):
            if not replace:
                raise FileExistsError(
                    f"{path} appeared while it was being written; not overwritten"
                )
            previous = temporary_sibling(path)
            tf.io.gfile.rename(path, previous, overwrite=False)
        try:
            tf.io.gfile.rename(temporary, path, overwrite=False)
        except tf.errors.AlreadyExistsError as error:
            raise FileExistsError(
                f"{path} appeared while it was being written; not overwritten"
            ) from error
        except BaseException:
            if previous is not None:
                tf.io.gfile.rename(previous, path, overwrite=False)
            raise
        if previous is not None:
            _remove_quietly(previous)
        if not _is_remote(path):
            _fsync_directory(_split(path)[0])
    except BaseException:
        _remove_quietly(temporary)
        raise


def write_directory(
    path: str | os.PathLike,
    write: Callable[[str], Any],
    temporary: str | None = None,
    replace: bool = False,
) -> str:
    """Calls `write(folder)` on a temporary folder and renames it to `path`; returns `path`.

    See `atomic_directory`, which this wraps, for the rules and errors.
    """
    with atomic_directory(path, temporary=temporary, replace=replace) as folder:
        write(folder)
    return os.fspath(path).rstrip("/") or os.fspath(path)
