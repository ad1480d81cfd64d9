"""Layers shared by garden-vision's backbones and heads."""

from garden_vision.modeling.layers.nn_layers import (
    SqueezeExcitation,
    StochasticDepth,
    batch_norm,
    get_activation,
    make_divisible,
)

__all__ = [
    "SqueezeExcitation",
    "StochasticDepth",
    "batch_norm",
    "get_activation",
    "make_divisible",
]
