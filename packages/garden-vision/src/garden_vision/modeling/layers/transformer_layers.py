"""The building blocks of vision transformers (ViT, DeiT).

- `PatchEmbedding`: cuts the image into non-overlapping patches and projects each one to a
  token (a strided convolution), giving a `[batch, rows, cols, width]` grid of tokens.
- `PositionEmbedding`: adds a learned position embedding to that grid; when the grid differs
  from the one the embedding was made for (a model pretrained at 224 fine-tuned at 384), the
  embedding is resized to it (bilinear or bicubic), both when it is called and when weights
  saved with another grid are loaded into it.
- `ClassToken`: prepends a learned token (ViT's class token, DeiT's distillation token) to a
  token sequence, with the token's own position embedding.
- `TransformerEncoderBlock`: a pre-norm transformer encoder block (multi-head self-attention
  and a GELU MLP, each with dropout, stochastic depth and optional LayerScale).

All layers are channels-last, mixed-precision safe and serializable.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from garden_vision.modeling.layers.nn_layers import StochasticDepth
from garden_vision.modeling.serialization import (
    new_initializer,
    serialize_initializer,
    serialize_regularizer,
)

_INTERPOLATIONS = ("bilinear", "bicubic")


@keras.saving.register_keras_serializable(package="garden_vision")
class PatchEmbedding(keras.layers.Layer):
    """Projects non-overlapping image patches to tokens (ViT's patch embedding).

    A `patch_size` x `patch_size` convolution with stride `patch_size` and no padding maps a
    `[batch, height, width, channels]` image to a `[batch, height / patch_size,
    width / patch_size, hidden_size]` grid of tokens. The image sides should be multiples of
    `patch_size` (a remainder is dropped, as with any valid convolution).

    Args:
      hidden_size: The token width.
      patch_size: The side of a square patch, in pixels.
      kernel_initializer: Initializer of the projection kernel (ViT: `lecun_normal`).
      bias_initializer: Initializer of the projection bias.
      kernel_regularizer: Regularizer of the projection kernel, or None.
      bias_regularizer: Regularizer of the projection bias, or None.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    def __init__(
        self,
        hidden_size: int,
        patch_size: int,
        kernel_initializer: str | Any = "lecun_normal",
        bias_initializer: str | Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if hidden_size < 1 or patch_size < 1:
            raise ValueError(
                f"PatchEmbedding needs hidden_size and patch_size >= 1, got {hidden_size} and "
                f"{patch_size}"
            )
        self.hidden_size = int(hidden_size)
        self.patch_size = int(patch_size)
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.bias_initializer = serialize_initializer(bias_initializer)
        self.kernel_regularizer = serialize_regularizer(kernel_regularizer)
        self.bias_regularizer = serialize_regularizer(bias_regularizer)
        self.projection = keras.layers.Conv2D(
            filters=self.hidden_size,
            kernel_size=self.patch_size,
            strides=self.patch_size,
            padding="valid",
            data_format="channels_last",
            kernel_initializer=new_initializer(self.kernel_initializer),
            bias_initializer=new_initializer(self.bias_initializer),
            kernel_regularizer=keras.regularizers.get(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.get(self.bias_regularizer),
            dtype=self.dtype_policy,
            name="projection",
        )

    def build(self, input_shape):
        self.projection.build(input_shape)

    def call(self, inputs):
        return self.projection(inputs)

    def compute_output_shape(self, input_shape):
        return self.projection.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "patch_size": self.patch_size,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned position embedding to a `[batch, rows, cols, width]` token grid.

    The embedding is a `[1, grid_rows, grid_cols, width]` weight. When the input's grid is
    not `grid_shape`, the embedding is resized to the input's grid with `interpolation`
    before it is added (ViT's recipe for fine-tuning at a higher resolution than it was
    pretrained at); a grid known only when the layer runs (an input of unknown size) is
    resized then. Loading weights saved with another grid (`load_weights`, `.keras` files)
    resizes the stored embedding to this layer's grid once, so a model built at the new
    resolution takes a checkpoint made at the old one as it is.

    Args:
      grid_shape: `(rows, cols)` of the embedding; None takes the input's grid when the layer
        is built (which must then be fixed).
      interpolation: `bilinear` (Model Garden's choice) or `bicubic`.
      initializer: Initializer of the embedding (ViT: normal with standard deviation 0.02).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    def __init__(
        self,
        grid_shape: tuple[int, int] | list[int] | None = None,
        interpolation: str = "bilinear",
        initializer: str | Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"PositionEmbedding interpolation {interpolation!r} is not one of "
                f"{', '.join(_INTERPOLATIONS)}"
            )
        if grid_shape is not None:
            grid_shape = tuple(int(side) for side in grid_shape)
            if len(grid_shape) != 2 or min(grid_shape) < 1:
                raise ValueError(
                    f"PositionEmbedding grid_shape must be (rows, cols), got {grid_shape}"
                )
        self.grid_shape = grid_shape
        self.interpolation = interpolation
        if initializer is None:
            initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.initializer = serialize_initializer(initializer)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"PositionEmbedding expects a [batch, rows, cols, width] grid, got {input_shape}"
            )
        if self.grid_shape is None:
            if input_shape[1] is None or input_shape[2] is None:
                raise ValueError(
                    "PositionEmbedding needs grid_shape when the input grid is not fixed, got "
                    f"input shape {input_shape}"
                )
            self.grid_shape = (int(input_shape[1]), int(input_shape[2]))
        self.embedding = self.add_weight(
            name="embedding",
            shape=(1, *self.grid_shape, input_shape[-1]),
            initializer=new_initializer(self.initializer),
        )

    def resized_embedding(self, grid_shape) -> Any:
        """The embedding resized to `grid_shape` (`(rows, cols)`, ints or scalar tensors)."""
        embedding = ops.convert_to_tensor(self.embedding)
        rows, cols = grid_shape
        if isinstance(rows, int) and isinstance(cols, int):
            if (rows, cols) == tuple(self.grid_shape):
                return embedding
            return ops.image.resize(embedding, (rows, cols), interpolation=self.interpolation)
        # keras.ops.image.resize needs a static size; a grid known only at run time (an
        # input of unknown size) is resized with TensorFlow's op, which Keras wraps.
        return tf.image.resize(embedding, tf.stack([rows, cols]), method=self.interpolation)

    def call(self, inputs):
        rows, cols = inputs.shape[1], inputs.shape[2]
        if rows is None or cols is None:
            shape = ops.shape(inputs)
            rows = shape[1] if rows is None else rows
            cols = shape[2] if cols is None else cols
        embedding = self.resized_embedding((rows, cols))
        return inputs + ops.cast(embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def load_own_variables(self, store):
        """Loads the embedding, resizing one saved with another grid to this layer's grid."""
        stored = np.asarray(store["0"])
        target = tuple(self.embedding.shape)
        if stored.shape == target or stored.ndim != 4 or stored.shape[-1] != target[-1]:
            super().load_own_variables(store)
            return
        resized = ops.image.resize(
            ops.convert_to_tensor(stored, dtype=self.embedding.dtype),
            self.grid_shape,
            interpolation=self.interpolation,
        )
        self.embedding.assign(ops.cast(resized, self.embedding.dtype))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "grid_shape": list(self.grid_shape) if self.grid_shape is not None else None,
            "interpolation": self.interpolation,
            "initializer": self.initializer,
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class ClassToken(keras.layers.Layer):
    """Prepends a learned token to a `[batch, tokens, width]` sequence.

    ViT's class token (initialized to zeros) and DeiT's distillation token (truncated normal)
    are both this layer; apply the distillation token's first so that the class token ends up
    first. The token has its own learned position embedding (ViT adds one to every token,
    the class token included), kept as a second weight so checkpoints map one to one.

    Args:
      initializer: Initializer of the token.
      use_position_embedding: Give the token its own learned position embedding.
      position_initializer: Initializer of that position embedding; None is ViT's normal
        with standard deviation 0.02.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    def __init__(
        self,
        initializer: str | Any = "zeros",
        use_position_embedding: bool = True,
        position_initializer: str | Any | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if position_initializer is None:
            position_initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.initializer = serialize_initializer(initializer)
        self.use_position_embedding = bool(use_position_embedding)
        self.position_initializer = serialize_initializer(position_initializer)

    def build(self, input_shape):
        width = input_shape[-1]
        self.token = self.add_weight(
            name="token", shape=(1, 1, width), initializer=new_initializer(self.initializer)
        )
        self.position_embedding = None
        if self.use_position_embedding:
            self.position_embedding = self.add_weight(
                name="position_embedding",
                shape=(1, 1, width),
                initializer=new_initializer(self.position_initializer),
            )

    def call(self, inputs):
        token = ops.cast(self.token, inputs.dtype)
        if self.position_embedding is not None:
            token = token + ops.cast(self.position_embedding, inputs.dtype)
        token = ops.broadcast_to(token, (ops.shape(inputs)[0], 1, inputs.shape[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initializer": self.initializer,
            "use_position_embedding": self.use_position_embedding,
            "position_initializer": self.position_initializer,
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class TransformerEncoderBlock(keras.layers.Layer):
    """A pre-norm transformer encoder block (ViT's `Encoder1DBlock`).

    On a `[batch, tokens, width]` sequence `x`:

        y = x + StochasticDepth(LayerScale(Dropout(SelfAttention(LayerNorm(x)))))
        out = y + StochasticDepth(LayerScale(MLP(LayerNorm(y))))

    where the MLP is Dense(`mlp_dim`), GELU, Dropout, Dense(width), Dropout. LayerNorm uses
    `norm_epsilon` (1e-6, as ViT's JAX code); the attention is
    `keras.layers.MultiHeadAttention` with `num_heads` heads of width `width / num_heads`.

    Args:
      num_heads: Number of attention heads; must divide the token width.
      mlp_dim: Width of the MLP's hidden layer.
      dropout_rate: Dropout after the attention and after each MLP layer.
      attention_dropout_rate: Dropout on the attention probabilities.
      stochastic_depth_rate: Probability of dropping each residual branch while training
        (`StochasticDepth`); 0 disables it.
      layer_scale_init_value: Initial value of LayerScale's per-channel scales (CaiT,
        Touvron et al., 2021) on both branches; 0 disables LayerScale.
      norm_epsilon: Epsilon of both layer normalizations.
      approximate_gelu: The tanh approximation of GELU (as JAX's default, which ViT's
        checkpoints were trained with) rather than the exact one.
      return_attention_scores: Also return the attention probabilities,
        `[batch, num_heads, tokens, tokens]`; the layer then returns `(outputs, scores)`.
      kernel_initializer: Initializer of the attention and MLP kernels.
      bias_initializer: Initializer of the attention and MLP biases.
      kernel_regularizer: Regularizer of the attention and MLP kernels, or None.
      bias_regularizer: Regularizer of the attention and MLP biases, or None.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).
    """

    def __init__(
        self,
        num_heads: int,
        mlp_dim: int,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        stochastic_depth_rate: float = 0.0,
        layer_scale_init_value: float = 0.0,
        norm_epsilon: float = 1e-6,
        approximate_gelu: bool = True,
        return_attention_scores: bool = False,
        kernel_initializer: str | Any = "glorot_uniform",
        bias_initializer: str | Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if num_heads < 1 or mlp_dim < 1:
            raise ValueError(
                f"TransformerEncoderBlock needs num_heads and mlp_dim >= 1, got {num_heads} and "
                f"{mlp_dim}"
            )
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.dropout_rate = float(dropout_rate)
        self.attention_dropout_rate = float(attention_dropout_rate)
        self.stochastic_depth_rate = float(stochastic_depth_rate)
        self.layer_scale_init_value = float(layer_scale_init_value)
        self.norm_epsilon = float(norm_epsilon)
        self.approximate_gelu = bool(approximate_gelu)
        self.return_attention_scores = bool(return_attention_scores)
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self.bias_initializer = serialize_initializer(bias_initializer)
        self.kernel_regularizer = serialize_regularizer(kernel_regularizer)
        self.bias_regularizer = serialize_regularizer(bias_regularizer)

        dtype = self.dtype_policy
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=dtype, name="attention_norm"
        )
        self.attention_output_dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=dtype, name="attention_output_dropout"
        )
        self.attention_stochastic_depth = StochasticDepth(
            self.stochastic_depth_rate, dtype=dtype, name="attention_stochastic_depth"
        )
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=dtype, name="mlp_norm"
        )
        self.mlp_hidden = keras.layers.Dense(
            self.mlp_dim, name="mlp_hidden", **self._dense_kwargs()
        )
        self.mlp_hidden_dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=dtype, name="mlp_hidden_dropout"
        )
        self.mlp_output_dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=dtype, name="mlp_output_dropout"
        )
        self.mlp_stochastic_depth = StochasticDepth(
            self.stochastic_depth_rate, dtype=dtype, name="mlp_stochastic_depth"
        )
        # The attention and the MLP's output layer need the token width: made in build.
        self.attention = None
        self.mlp_output = None

    def _dense_kwargs(self) -> dict[str, Any]:
        return {
            "kernel_initializer": new_initializer(self.kernel_initializer),
            "bias_initializer": new_initializer(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.get(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.get(self.bias_regularizer),
            "dtype": self.dtype_policy,
        }

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "TransformerEncoderBlock expects a [batch, tokens, width] sequence, got "
                f"{input_shape}"
            )
        width = int(input_shape[-1])
        if width % self.num_heads:
            raise ValueError(
                f"TransformerEncoderBlock: num_heads {self.num_heads} does not divide the token "
                f"width {width}"
            )
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=width // self.num_heads,
            dropout=self.attention_dropout_rate,
            name="attention",
            **self._dense_kwargs(),
        )
        self.mlp_output = keras.layers.Dense(width, name="mlp_output", **self._dense_kwargs())
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_hidden.build(input_shape)
        self.mlp_output.build((*input_shape[:-1], self.mlp_dim))
        self.attention_scale = None
        self.mlp_scale = None
        if self.layer_scale_init_value:
            scale = keras.initializers.Constant(self.layer_scale_init_value)
            self.attention_scale = self.add_weight(
                name="attention_layer_scale", shape=(width,), initializer=scale
            )
            self.mlp_scale = self.add_weight(
                name="mlp_layer_scale", shape=(width,), initializer=scale
            )

    def call(self, inputs, training=None):
        x = self.attention_norm(inputs)
        if self.return_attention_scores:
            x, scores = self.attention(x, x, training=training, return_attention_scores=True)
        else:
            x = self.attention(x, x, training=training)
        x = self.attention_output_dropout(x, training=training)
        if self.attention_scale is not None:
            x = x * ops.cast(self.attention_scale, x.dtype)
        x = inputs + self.attention_stochastic_depth(x, training=training)

        y = self.mlp_norm(x)
        y = self.mlp_hidden(y)
        y = keras.activations.gelu(y, approximate=self.approximate_gelu)
        y = self.mlp_hidden_dropout(y, training=training)
        y = self.mlp_output(y)
        y = self.mlp_output_dropout(y, training=training)
        if self.mlp_scale is not None:
            y = y * ops.cast(self.mlp_scale, y.dtype)
        outputs = x + self.mlp_stochastic_depth(y, training=training)
        if self.return_attention_scores:
            return outputs, scores
        return outputs

    def compute_output_shape(self, input_shape):
        if self.return_attention_scores:
            tokens = input_shape[1]
            return tuple(input_shape), (input_shape[0], self.num_heads, tokens, tokens)
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            "layer_scale_init_value": self.layer_scale_init_value,
            "norm_epsilon": self.norm_epsilon,
            "approximate_gelu": self.approximate_gelu,
            "return_attention_scores": self.return_attention_scores,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
        }
