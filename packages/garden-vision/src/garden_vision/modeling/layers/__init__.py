"""Layers shared by garden-vision's backbones and heads."""

from garden_vision.modeling.layers.nn_layers import (
    BatchNormalization,
    SqueezeExcitation,
    StochasticDepth,
    batch_norm,
    get_activation,
    make_divisible,
)

__all__ = [
    "BatchNormalization",
    "SqueezeExcitation",
    "StochasticDepth",
    "batch_norm",
    "get_activation",
    "make_divisible",
]
