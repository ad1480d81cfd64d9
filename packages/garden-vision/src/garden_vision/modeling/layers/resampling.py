"""Nearest-neighbour upsampling for the multi-level networks (SpineNet, FPN, NAS-FPN).

`NearestUpsampling` is Model Garden's `spatial_transform_ops.nearest_upsampling` as a Keras
layer: it repeats every pixel `scale` times along height and width by reshaping and
broadcasting (no gather), so it works with unknown spatial sizes and under every dtype
policy. `upsampling_layer` picks it, or Keras' own `UpSampling2D` where a model asks for
"Keras layers only" (Model Garden's `use_keras_layer` / `use_keras_upsampling_2d`, which
some model-optimization tools need); both compute the same values.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="garden_vision")
class NearestUpsampling(keras.layers.Layer):
    """Upsamples `[batch, height, width, channels]` maps by an integer factor (nearest).

    Output pixel `(y, x)` is input pixel `(y // scale, x // scale)`.

    Args:
      scale: The integer upsampling factor (>= 1) of both height and width.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Raises:
      ValueError: If `scale` is not a positive integer.
    """

    def __init__(self, scale: int, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(scale, bool) or int(scale) != scale or scale < 1:
            raise ValueError(f"NearestUpsampling `scale` must be a positive integer, got {scale!r}")
        self.scale = int(scale)

    def call(self, inputs):
        if self.scale == 1:
            return inputs
        shape = ops.shape(inputs)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        x = ops.reshape(inputs, (batch, height, 1, width, 1, channels))
        x = ops.broadcast_to(x, (batch, height, self.scale, width, self.scale, channels))
        return ops.reshape(x, (batch, height * self.scale, width * self.scale, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (
            batch,
            None if height is None else height * self.scale,
            None if width is None else width * self.scale,
            channels,
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


def upsampling_layer(
    scale: int, use_keras_layer: bool = False, **kwargs: Any
) -> keras.layers.Layer:
    """A nearest-neighbour upsampling layer by `scale`.

    Args:
      scale: The integer upsampling factor.
      use_keras_layer: `keras.layers.UpSampling2D` instead of `NearestUpsampling` (same
        values).
      **kwargs: Passed to the layer (e.g. `name`, `dtype`).
    """
    if use_keras_layer:
        return keras.layers.UpSampling2D(size=int(scale), interpolation="nearest", **kwargs)
    return NearestUpsampling(scale, **kwargs)
