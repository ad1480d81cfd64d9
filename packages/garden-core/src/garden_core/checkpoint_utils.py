"""Checkpoint helpers shared by tasks, export and the command line.

Kept apart from `base_task` and `export_base` so that any module (a task restoring
`init_checkpoint`, an exporter, a tool) can resolve checkpoint paths without importing the
task or export machinery.
"""

from __future__ import annotations

import tensorflow as tf


def resolve_checkpoint(path: str) -> str | None:
    """Returns the checkpoint prefix `path` names: itself, or a directory's latest checkpoint.

    Args:
      path: A checkpoint prefix (`.../ckpt-100`, whose `.index` file exists) or a directory
        holding checkpoints (its latest one, as `tf.train.latest_checkpoint` finds it).

    Returns:
      The checkpoint prefix, or None when `path` names no readable checkpoint.
    """
    if tf.io.gfile.isdir(path):
        return tf.train.latest_checkpoint(path)
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None
