"""`Backbone`: the base class of garden-vision's backbones (see the package docstring)."""

from __future__ import annotations

from typing import Any

import keras


class Backbone(keras.Model):
    """A functional model whose call returns a dict of feature maps keyed by level.

    Subclasses build their graph in `__init__` and end it with
    `super().__init__(inputs=inputs, outputs=endpoints, **kwargs)`, where `endpoints` maps
    `"2"` ... `"5"` (stride `2**level`), and optionally `"pre_logits"`, to tensors; they
    implement `get_config` with their constructor arguments. `output_specs` then reports
    the shape of every output.

    Args:
      inputs: The `keras.Input` of the image.
      outputs: The dict of output tensors.
      **kwargs: Passed to `keras.Model` (e.g. `name`).
    """

    def __init__(self, inputs: Any, outputs: dict[str, Any], **kwargs: Any):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._output_specs = {key: tuple(value.shape) for key, value in outputs.items()}

    @property
    def output_specs(self) -> dict[str, tuple[int | None, ...]]:
        """Output key -> the shape of that output, batch dimension (None) first."""
        return dict(self._output_specs)
