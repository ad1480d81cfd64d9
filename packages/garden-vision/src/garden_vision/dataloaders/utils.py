"""Helpers shared by detection parsers (Model Garden's `official.vision.dataloaders.utils`).

- `process_source_id`: the string `source_id` of a record as the int64 the evaluators key
  images by (`-1` when the record has none).
- `pad_groundtruths_to_fixed_size`: pads (or truncates) per-object ground truth to a fixed
  count so that evaluation batches have static shapes.
- `check_record`: an assertion whose error names the bad record by its `source_id`.
"""

from __future__ import annotations

import tensorflow as tf

from garden_vision.ops import preprocess_ops

__all__ = ["check_record", "pad_groundtruths_to_fixed_size", "process_source_id"]

# The padding value of each padded ground-truth field (Model Garden's).
_PAD_VALUES = {"boxes": -1, "is_crowds": 0, "areas": -1, "classes": -1}


def process_source_id(source_id: tf.Tensor) -> tf.Tensor:
    """Returns `source_id` as an int64 scalar, or -1 when it is empty.

    Args:
      source_id: A string scalar holding a decimal integer (as Model Garden's converters and
        `TfExampleDecoder` write it), an empty string, or an integer scalar.

    Raises:
      tf.errors.InvalidArgumentError: When run on a string that is not a decimal integer.
    """
    source_id = tf.convert_to_tensor(source_id)
    if source_id.dtype == tf.string:
        return tf.cond(
            tf.equal(tf.strings.length(source_id), 0),
            lambda: tf.constant(-1, tf.int64),
            lambda: tf.strings.to_number(source_id, tf.int64),
        )
    source_id = tf.cast(source_id, tf.int64)
    if source_id.shape.rank == 0:
        return source_id
    return tf.cond(
        tf.equal(tf.size(source_id), 0),
        lambda: tf.constant(-1, tf.int64),
        lambda: tf.reshape(source_id, [-1])[0],
    )


def pad_groundtruths_to_fixed_size(
    groundtruths: dict[str, tf.Tensor], size: int
) -> dict[str, tf.Tensor]:
    """Pads `boxes`, `is_crowds`, `areas` and `classes` (and `attributes`) to `size` rows.

    Padding rows hold -1 (`boxes`, `areas`, `classes`, attributes) or 0 (`is_crowds`), as in
    Model Garden; objects beyond `size` are dropped. Other entries are returned unchanged.

    Args:
      groundtruths: Per-image ground truth; the four fields are `[num_objects, ...]`, and
        `attributes` (optional) maps names to `[num_objects, ...]` tensors.
      size: The number of rows of every padded field.

    Returns:
      A new dict with the padded fields.
    """
    padded = dict(groundtruths)
    for key, value in _PAD_VALUES.items():
        if key in padded:
            padded[key] = preprocess_ops.clip_or_pad_to_fixed_size(padded[key], size, value)
    if "attributes" in padded:
        padded["attributes"] = {
            name: preprocess_ops.clip_or_pad_to_fixed_size(value, size, -1)
            for name, value in padded["attributes"].items()
        }
    return padded


def check_record(condition: tf.Tensor, source_id: tf.Tensor, problem: str) -> tf.Operation:
    """An op failing with `InvalidArgumentError` naming the record when `condition` is False.

    The message reads `record (source_id) <id>: <problem>`, so a bad record in a dataset of
    millions can be found. Run it before the values it guards, e.g. with
    `tf.control_dependencies([check_record(...)])`.

    Args:
      condition: A boolean scalar that holds for good records.
      source_id: The record's `source_id` (string or integer scalar).
      problem: What is wrong when the condition fails.
    """
    return tf.debugging.Assert(
        condition, ["record (source_id)", source_id, ":", problem], summarize=16
    )
