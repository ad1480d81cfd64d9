"""What the TFRecord-writing tools share: shard names, the output folder, messages.

`garden-images-to-tfrecords` and `garden-coco-to-tfrecords` write `--num_shards` files named
`PREFIX-00000-of-0000N.tfrecord` (`shard_path`) into the folder of `--output_prefix`
(`prepare_output_prefix` checks and creates it), report errors in one line (`one_line`),
and warn about shards of an earlier run with another shard count (`warn_stale_shards`).
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Sequence

import tensorflow as tf

__all__ = ["join", "one_line", "prepare_output_prefix", "shard_path", "warn_stale_shards"]


def one_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (or its type's name)."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def join(directory: str, name: str) -> str:
    """`directory/name` with `/` separators (as GFile paths use), or `name` alone."""
    return name if not directory else directory.rstrip("/") + "/" + name


def shard_path(output_prefix: str, index: int, num_shards: int) -> str:
    """The path of shard `index` of `num_shards`: `PREFIX-00000-of-00004.tfrecord`."""
    return f"{output_prefix}-{index:05d}-of-{num_shards:05d}.tfrecord"


def prepare_output_prefix(
    output_prefix: str, error_class: type[Exception], example: str = "OUT/train"
) -> str:
    """Checks `--output_prefix`, creates its folder if missing and returns the folder.

    Args:
      output_prefix: The shards' path prefix.
      error_class: The tool's error type, raised with a one-line message.
      example: An example prefix for the message.

    Raises:
      error_class: If the prefix names a folder, its folder is a file, or it cannot be made.
    """
    if not output_prefix or output_prefix.endswith(("/", "\\")):
        raise error_class(
            f"--output_prefix {output_prefix!r} must end in a file-name prefix, e.g. {example}"
        )
    directory = posixpath.dirname(output_prefix)
    if directory:
        if tf.io.gfile.exists(directory) and not tf.io.gfile.isdir(directory):
            raise error_class(
                f"--output_prefix {output_prefix!r}: {directory!r} is a file, not a directory"
            )
        try:
            tf.io.gfile.makedirs(directory)
        except (tf.errors.OpError, OSError) as error:
            raise error_class(
                f"--output_prefix {output_prefix!r}: cannot create {directory!r}: {one_line(error)}"
            ) from None
    return directory


def warn_stale_shards(prog: str, output_prefix: str, shards: Sequence[str]) -> None:
    """Warns on stderr about shards under `output_prefix` that this run did not write."""
    pattern = f"{output_prefix}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].tfrecord"
    try:
        stale = sorted(set(tf.io.gfile.glob(pattern)) - set(shards))
    except tf.errors.OpError:
        return
    if stale:
        print(
            f"{prog}: warning: {len(stale)} shards of an earlier run with another "
            f"--num_shards remain beside the new ones (e.g. {stale[0]!r}); remove them "
            "before reading with a glob",
            file=sys.stderr,
        )
