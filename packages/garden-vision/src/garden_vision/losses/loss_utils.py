"""Helpers shared by detection losses (Model Garden's `losses.loss_utils`).

Dense detectors predict one map per feature level (`{"3": [B, H3, W3, A * K], ...}`) while
targets and weights come flat over every anchor of the image. `multi_level_flatten` turns
the maps into that flat layout: levels in increasing order, then rows, columns and anchors,
which is the order of `garden_vision.ops.anchor.Anchor.boxes` and of the anchor labeler's
weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keras import ops


def sorted_levels(multi_level: Mapping[str, Any]) -> list[str]:
    """The level keys of a multi-level mapping, by increasing level (`"3"` before `"10"`).

    Raises:
      ValueError: If a key is not a level number.
    """
    keys = list(multi_level)
    bad = [key for key in keys if not str(key).lstrip("-").isdigit()]
    if bad:
        raise ValueError(f"multi-level keys must be level numbers such as '3', got {bad}")
    return sorted(keys, key=int)


def multi_level_flatten(multi_level_inputs: Mapping[str, Any], last_dim: int | None = None) -> Any:
    """Concatenates per-level maps into one tensor over every anchor.

    Args:
      multi_level_inputs: Level -> `[batch, d1, ..., dm]` (e.g. `[B, H, W, A * K]`).
      last_dim: With None, each level is flattened to `[batch, -1]`; with K, to
        `[batch, -1, K]` (K values per anchor).

    Returns:
      `[batch, N]` or `[batch, N, last_dim]`, levels in increasing order.

    Raises:
      ValueError: For an empty mapping, a key that is not a level, or a level whose size is
        not a multiple of `last_dim`.
    """
    if not multi_level_inputs:
        raise ValueError("multi_level_flatten needs at least one level")
    flattened = []
    for level in sorted_levels(multi_level_inputs):
        value = multi_level_inputs[level]
        channels = value.shape[-1]
        if last_dim is not None and channels is not None and channels % last_dim:
            raise ValueError(
                f"level {level}: the last dimension {channels} is not a multiple of "
                f"last_dim {last_dim}"
            )
        batch = ops.shape(value)[0]
        shape = (batch, -1) if last_dim is None else (batch, -1, last_dim)
        flattened.append(ops.reshape(value, shape))
    return ops.concatenate(flattened, axis=1)
