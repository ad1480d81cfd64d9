"""The identity decoder: passes a backbone's features through unchanged.

Model Garden's `decoders.Identity`, for models whose heads read the backbone's own levels.
Registered as the `identity` entry of `garden.decoders` (`build_identity`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from garden_vision.configs.common import NormActivation


@keras.saving.register_keras_serializable(package="garden_vision")
class Identity(keras.layers.Layer):
    """Returns its input (a dict of features keyed by level) unchanged.

    Args:
      input_specs: The backbone's `output_specs` (level -> shape); they are the decoder's
        `output_specs` too. None if unknown.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    def __init__(self, input_specs: Mapping[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._output_specs = {
            str(key): tuple(shape) for key, shape in dict(input_specs or {}).items()
        }

    @property
    def output_specs(self) -> dict[str, tuple[int | None, ...]]:
        """Output key -> the shape of that output, batch dimension (None) first."""
        return dict(self._output_specs)

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_specs": {key: list(shape) for key, shape in self._output_specs.items()},
        }


def build_identity(
    input_specs: Mapping[str, Any],
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    min_level: int | None = None,
    max_level: int | None = None,
) -> Identity:
    """Builds the `Identity` decoder (the `identity` entry of `garden.decoders`).

    Args:
      input_specs: The backbone's `output_specs` (level -> shape).
      norm_activation_config: Unused (the identity has no layers); every decoder builder
        receives it.
      l2_regularizer: Unused, as `norm_activation_config`.
      min_level: Unused: the identity passes every level the backbone reports (the
        model's heads read the levels they need); every decoder builder receives it.
      max_level: Unused, as `min_level`.
    """
    # Nothing to normalize or regularize, and no levels to choose.
    del norm_activation_config, l2_regularizer, min_level, max_level
    return Identity(input_specs=input_specs)
