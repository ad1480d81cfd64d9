"""Helpers shared by the NLP tasks: building variables, pretrained checkpoints, host logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from garden_core.checkpoint_utils import resolve_checkpoint


def build_variables(model: keras.Model, extra_inputs: Mapping[str, Any] | None = None):
    """Creates `model`'s variables with one call on a dummy batch (one sequence of 2 tokens).

    The trainer builds the optimizer's slots from `model.trainable_variables` before the
    first step, and checkpoints restore into existing variables, so a task returns its
    model built. Returns `model`.
    """
    ids = tf.zeros([1, 2], tf.int32)
    inputs = {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": ids}
    model({**inputs, **(extra_inputs or {})}, training=False)
    return model


def restore_pretrained(
    path: str,
    items: Mapping[str, Any],
    field: str = "task.init_checkpoint",
    model: keras.Model | None = None,
):
    """Restores `items` (e.g. `{"encoder": encoder}`) from a pretrained checkpoint.

    The checkpoint may hold the items at its top level (a converted BERT checkpoint, or any
    `tf.train.Checkpoint(encoder=...)`) or inside a model that a Garden training run saved
    (`model/encoder/...`, e.g. a `bert/pretraining` run); given `model`, such a run's
    checkpoint restores the whole model instead. Every variable of `items` must be found,
    so a checkpoint of another architecture is an error instead of a silent no-op.

    Raises:
      FileNotFoundError: If `path` names no checkpoint.
      ValueError: If the checkpoint lacks some of the variables of `items`.
    """
    resolved = resolve_checkpoint(path)
    if resolved is None:
        raise FileNotFoundError(
            f"{field}: no checkpoint at {path!r} (expected a checkpoint prefix or a directory "
            "holding one)"
        )
    names = {name for name, _ in tf.train.list_variables(resolved)}
    top_level = any(name.split("/")[0] in items for name in names)
    if top_level:
        checkpoint = tf.train.Checkpoint(**items)
    elif model is not None:
        checkpoint = tf.train.Checkpoint(model=model)
    else:
        checkpoint = tf.train.Checkpoint(model=tf.train.Checkpoint(**items))
    status = checkpoint.read(resolved)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError:
        entries = sorted({name.split("/")[0] for name in names} - {"_CHECKPOINTABLE_OBJECT_GRAPH"})
        raise ValueError(
            f"{field}: {resolved} does not hold all of this model's {', '.join(items)} "
            f"(a checkpoint of another architecture or size?); its entries are: "
            f"{', '.join(entries)}"
        ) from None
    return resolved


def concat_replicas(values: Any) -> np.ndarray:
    """Concatenates one output's per-replica tensors (a tuple from the trainer) on the host."""
    if isinstance(values, (tuple, list)):
        return np.concatenate([np.asarray(v) for v in values], axis=0)
    return np.asarray(values)
