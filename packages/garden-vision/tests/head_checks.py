"""NumPy references and inputs shared by the detection heads' tests."""

from __future__ import annotations

import numpy as np


def pyramid_features(sizes, channels=8, batch=2, seed=0):
    """Random float32 features `{level: [batch, side, side, channels]}` for `sizes`
    (level -> side)."""
    rng = np.random.default_rng(seed)
    return {
        level: rng.normal(size=(batch, side, side, channels)).astype("float32")
        for level, side in sizes.items()
    }


def conv3x3(x, kernel, bias):
    """'Same' 3x3 convolution in NumPy: x [N, H, W, C], kernel [3, 3, C, F]."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + height, dx : dx + width, :] @ kernel[dy, dx]
    return out + bias


def n_params(layer, trainable_only=False):
    """Scalars in the layer's weights (its trainable ones only with `trainable_only`)."""
    weights = layer.trainable_weights if trainable_only else layer.weights
    return sum(int(np.prod(w.shape)) for w in weights)
