"""`TransformerEncoderBlock`: one layer of a Transformer encoder (BERT's layer).

Multi-head self-attention followed by a two-layer feed-forward network, each wrapped in a
residual connection and layer normalization (Vaswani et al., 2017; Devlin et al., 2018):

- post-norm (BERT, the default): `x = LN(x + Dropout(Attention(x)))`, then
  `x = LN(x + Dropout(W2 act(W1 x)))`;
- pre-norm (`norm_first=True`): `x = x + Dropout(Attention(LN(x)))`, then
  `x = x + Dropout(W2 act(W1 LN(x)))`.

The attention is `keras.layers.MultiHeadAttention`, the feed-forward network two
`EinsumDense` layers, so the block runs as a few large matrix multiplies. Under mixed
precision (`mixed_float16` / `mixed_bfloat16`) the block follows Keras' rules: variables
stay float32, layer normalization computes its statistics in float32, and the rest (the
attention softmax included, as in Keras' and Model Garden's attention layers) runs in the
compute dtype.
"""

from __future__ import annotations

from typing import Any

import keras


def _serialize(kind, value: Any) -> Any:
    return None if value is None else kind.serialize(kind.get(value))


def serialize_activation(activation: Any) -> Any:
    """An activation name or function in a form `get_config` can hold.

    Names stay names; functions are serialized by Keras when it can, else kept as they are
    (enough to rebuild the layer in the same process).
    """
    if activation is None or isinstance(activation, (str, dict)):
        return activation
    try:
        return keras.activations.serialize(activation)
    except (TypeError, ValueError):
        return activation


@keras.saving.register_keras_serializable(package="garden_nlp")
class TransformerEncoderBlock(keras.layers.Layer):
    """A Transformer encoder layer: self-attention and a feed-forward network.

    Call it on the sequence `[batch, seq, hidden]` alone, on `[sequence, attention_mask]`
    (mask `[batch, seq, seq]`, 1 where a query may attend to a key, see
    `SelfAttentionMask`), or on `[query_sequence, key_value_sequence, attention_mask]`.
    It returns `[batch, seq, hidden]` (or `[batch, output_range, hidden]`), and with
    `return_attention_scores=True` the tuple `(output, scores)`, scores being
    `[batch, num_attention_heads, seq, seq]`.

    Example (a BERT-base layer):

        block = TransformerEncoderBlock(
            num_attention_heads=12, inner_dim=3072, inner_activation="gelu",
            output_dropout=0.1, attention_dropout=0.1,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        outputs = block([embeddings, attention_mask])

    Args:
      num_attention_heads: Number of attention heads; the hidden size should be a multiple.
      inner_dim: Width of the first feed-forward layer (BERT's intermediate size).
      inner_activation: Activation of the first feed-forward layer: a Keras activation
        name (`"gelu"` is the exact erf GELU of the original BERT, `"relu"`, ...) or a
        function.
      output_range: If set, only the first `output_range` positions are computed as
        queries (the output is `[batch, output_range, hidden]`), e.g. only the [CLS] token
        in the last layer of a classifier. `call(..., output_range=n)` overrides it.
      kernel_initializer: Initializer of the dense kernels.
      bias_initializer: Initializer of the dense biases.
      kernel_regularizer: Regularizer of the dense kernels, or None.
      bias_regularizer: Regularizer of the dense biases, or None.
      activity_regularizer: Regularizer of the layer's output, or None.
      kernel_constraint: Constraint of the dense kernels, or None.
      bias_constraint: Constraint of the dense biases, or None.
      use_bias: Whether the attention projections have biases.
      norm_first: Pre-norm (normalize the inputs of the attention and feed-forward
        sub-layers) instead of BERT's post-norm (normalize their residual sums).
      norm_epsilon: Epsilon of the layer normalizations.
      output_dropout: Dropout rate of the attention output and of the feed-forward output
        (BERT's hidden dropout).
      attention_dropout: Dropout rate of the attention probabilities.
      inner_dropout: Dropout rate after the first feed-forward layer's activation.
      attention_initializer: Initializer of the attention kernels; None uses
        `kernel_initializer`.
      attention_axes: Axes the attention runs over (None: all but batch, heads, features).
      use_query_residual: Whether the attention sub-layer has its residual connection.
      key_dim: Width of each attention head for queries and keys; None is
        `hidden // num_attention_heads`.
      value_dim: Width of each attention head for values; None is `key_dim`.
      output_last_dim: Width of the output; None is the input's width.
      diff_q_kv_att_layer_norm: With `norm_first`, normalize the key/value sequence with its
        own layer normalization.
      return_attention_scores: Also return the attention probabilities.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Attributes (after the block is built):
      attention_layer: The `keras.layers.MultiHeadAttention`.
      attention_layer_norm: Layer normalization of the attention sub-layer.
      intermediate_dense: The first feed-forward layer (`EinsumDense`, kernel
        `[hidden, inner_dim]`).
      output_dense: The second feed-forward layer (`EinsumDense`, kernel
        `[inner_dim, hidden]`).
      output_layer_norm: Layer normalization of the feed-forward sub-layer.
    """

    def __init__(
        self,
        num_attention_heads: int,
        inner_dim: int,
        inner_activation: Any,
        output_range: int | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        use_bias: bool = True,
        norm_first: bool = False,
        norm_epsilon: float = 1e-12,
        output_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        inner_dropout: float = 0.0,
        attention_initializer: Any = None,
        attention_axes: Any = None,
        use_query_residual: bool = True,
        key_dim: int | None = None,
        value_dim: int | None = None,
        output_last_dim: int | None = None,
        diff_q_kv_att_layer_norm: bool = False,
        return_attention_scores: bool = False,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if int(num_attention_heads) < 1 or int(inner_dim) < 1:
            raise ValueError(
                f"TransformerEncoderBlock `{self.name}` needs num_attention_heads and "
                f"inner_dim >= 1, got {num_attention_heads} and {inner_dim}"
            )
        for what, rate in (
            ("output_dropout", output_dropout),
            ("attention_dropout", attention_dropout),
            ("inner_dropout", inner_dropout),
        ):
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(
                    f"TransformerEncoderBlock `{self.name}`: {what} must be in [0, 1), got {rate}"
                )
        if diff_q_kv_att_layer_norm and not norm_first:
            raise ValueError(
                f"TransformerEncoderBlock `{self.name}`: diff_q_kv_att_layer_norm=True needs "
                "norm_first=True"
            )
        self.num_attention_heads = int(num_attention_heads)
        self.inner_dim = int(inner_dim)
        self.inner_activation = serialize_activation(inner_activation)
        keras.activations.get(self.inner_activation)  # Fails early for an unknown name.
        self.output_range = None if output_range is None else int(output_range)
        self.kernel_initializer = _serialize(keras.initializers, kernel_initializer)
        self.bias_initializer = _serialize(keras.initializers, bias_initializer)
        self.kernel_regularizer = _serialize(keras.regularizers, kernel_regularizer)
        self.bias_regularizer = _serialize(keras.regularizers, bias_regularizer)
        self.kernel_constraint = _serialize(keras.constraints, kernel_constraint)
        self.bias_constraint = _serialize(keras.constraints, bias_constraint)
        self.attention_initializer = _serialize(keras.initializers, attention_initializer)
        self.use_bias = bool(use_bias)
        self.norm_first = bool(norm_first)
        self.norm_epsilon = float(norm_epsilon)
        self.output_dropout = float(output_dropout)
        self.attention_dropout = float(attention_dropout)
        self.inner_dropout = float(inner_dropout)
        self.attention_axes = attention_axes
        self.use_query_residual = bool(use_query_residual)
        self.key_dim = None if key_dim is None else int(key_dim)
        self.value_dim = None if value_dim is None else int(value_dim)
        self.output_last_dim = None if output_last_dim is None else int(output_last_dim)
        self.diff_q_kv_att_layer_norm = bool(diff_q_kv_att_layer_norm)
        self.return_attention_scores = bool(return_attention_scores)

    def _dense_kwargs(self) -> dict[str, Any]:
        """Fresh initializers, regularizers and constraints for one sub-layer."""
        return {
            "kernel_initializer": keras.initializers.get(self.kernel_initializer),
            "bias_initializer": keras.initializers.get(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.get(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.get(self.bias_regularizer),
            "kernel_constraint": keras.constraints.get(self.kernel_constraint),
            "bias_constraint": keras.constraints.get(self.bias_constraint),
        }

    def _layer_norm(self, name: str) -> keras.layers.LayerNormalization:
        return keras.layers.LayerNormalization(
            axis=-1, epsilon=self.norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def build(self, input_shape):
        if (
            isinstance(input_shape, list)
            and input_shape
            and isinstance(input_shape[0], (list, tuple))
        ):
            query_shape = tuple(input_shape[0])
            value_shape = tuple(input_shape[1]) if len(input_shape) == 3 else query_shape
        else:
            query_shape = value_shape = tuple(input_shape)
        hidden_size = query_shape[-1]
        if hidden_size is None:
            raise ValueError(
                f"TransformerEncoderBlock `{self.name}` needs a known hidden size (last "
                f"dimension), got input shape {query_shape}"
            )
        key_dim = self.key_dim
        if key_dim is None:
            if hidden_size % self.num_attention_heads:
                raise ValueError(
                    f"TransformerEncoderBlock `{self.name}`: the hidden size {hidden_size} is "
                    f"not a multiple of num_attention_heads={self.num_attention_heads}"
                )
            key_dim = hidden_size // self.num_attention_heads
        output_width = self.output_last_dim or hidden_size
        if self.use_query_residual and output_width != hidden_size:
            raise ValueError(
                f"TransformerEncoderBlock `{self.name}`: output_last_dim={output_width} differs "
                f"from the hidden size {hidden_size}, which the query residual needs "
                "(set use_query_residual=False)"
            )
        attention_kwargs = self._dense_kwargs()
        if self.attention_initializer is not None:
            attention_kwargs["kernel_initializer"] = keras.initializers.get(
                self.attention_initializer
            )
        self.attention_layer = keras.layers.MultiHeadAttention(
            num_heads=self.num_attention_heads,
            key_dim=key_dim,
            value_dim=self.value_dim,
            dropout=self.attention_dropout,
            use_bias=self.use_bias,
            output_shape=self.output_last_dim,
            attention_axes=self.attention_axes,
            dtype=self.dtype_policy,
            name="self_attention",
            **attention_kwargs,
        )
        self.attention_layer.build(query_shape, value_shape)
        self.attention_output_dropout = keras.layers.Dropout(
            self.output_dropout, dtype=self.dtype_policy, name="attention_output_dropout"
        )
        self.attention_layer_norm = self._layer_norm("self_attention_layer_norm")
        # Pre-norm normalizes the block's input; post-norm the attention sub-layer's output.
        normalized_width = hidden_size if self.norm_first else output_width
        self.attention_layer_norm.build(query_shape[:-1] + (normalized_width,))
        self.attention_layer_norm_kv = self.attention_layer_norm
        if self.diff_q_kv_att_layer_norm:
            self.attention_layer_norm_kv = self._layer_norm("self_attention_layer_norm_kv")
            self.attention_layer_norm_kv.build(value_shape)

        equation = "abc,cd->abd" if len(query_shape) == 3 else "...bc,cd->...bd"
        self.intermediate_dense = keras.layers.EinsumDense(
            equation,
            output_shape=(None, self.inner_dim),
            bias_axes="d",
            dtype=self.dtype_policy,
            name="intermediate",
            **self._dense_kwargs(),
        )
        self.intermediate_dense.build(query_shape[:-1] + (output_width,))
        self.intermediate_activation = keras.layers.Activation(
            self.inner_activation, dtype=self.dtype_policy, name="intermediate_activation"
        )
        self.inner_dropout_layer = keras.layers.Dropout(
            self.inner_dropout, dtype=self.dtype_policy, name="inner_dropout"
        )
        self.output_dense = keras.layers.EinsumDense(
            equation,
            output_shape=(None, output_width),
            bias_axes="d",
            dtype=self.dtype_policy,
            name="output",
            **self._dense_kwargs(),
        )
        self.output_dense.build(query_shape[:-1] + (self.inner_dim,))
        self.output_dropout_layer = keras.layers.Dropout(
            self.output_dropout, dtype=self.dtype_policy, name="output_dropout"
        )
        self.output_layer_norm = self._layer_norm("output_layer_norm")
        self.output_layer_norm.build(query_shape[:-1] + (output_width,))

    def call(self, inputs, output_range: int | None = None, training=None):
        """Runs the block.

        Args:
          inputs: The sequence, `[sequence, attention_mask]` or `[query_sequence,
            key_value_sequence, attention_mask]`.
          output_range: Overrides the constructor's `output_range` for this call.
          training: Whether dropout is active.
        """
        key_value = attention_mask = None
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 2:
                sequence, attention_mask = inputs
            elif len(inputs) == 3:
                sequence, key_value, attention_mask = inputs
            else:
                raise ValueError(
                    f"TransformerEncoderBlock `{self.name}` takes a sequence, [sequence, mask] "
                    f"or [query, key_value, mask], got a list of {len(inputs)}"
                )
        else:
            sequence = inputs
        if output_range is None:
            output_range = self.output_range

        source = sequence
        if self.norm_first:
            sequence = self.attention_layer_norm(sequence)
            if key_value is not None:
                key_value = self.attention_layer_norm_kv(key_value)
        if key_value is None:
            key_value = sequence
        query = sequence
        if output_range:
            query = sequence[:, :output_range, :]
            source = source[:, :output_range, :]
            if attention_mask is not None:
                attention_mask = attention_mask[:, :output_range, :]

        attention = self.attention_layer(
            query=query,
            value=key_value,
            attention_mask=attention_mask,
            return_attention_scores=self.return_attention_scores,
            training=training,
        )
        if self.return_attention_scores:
            attention, scores = attention
        attention = self.attention_output_dropout(attention, training=training)
        if self.norm_first:
            if self.use_query_residual:
                attention = source + attention
            residual = attention
            inner = self.output_layer_norm(attention)
        else:
            if self.use_query_residual:
                attention = query + attention
            attention = self.attention_layer_norm(attention)
            residual = attention
            inner = attention

        inner = self.intermediate_dense(inner)
        inner = self.intermediate_activation(inner)
        inner = self.inner_dropout_layer(inner, training=training)
        layer_output = self.output_dense(inner)
        layer_output = self.output_dropout_layer(layer_output, training=training)
        if self.norm_first:
            layer_output = residual + layer_output
        else:
            layer_output = self.output_layer_norm(residual + layer_output)

        if self.return_attention_scores:
            return layer_output, scores
        return layer_output

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_attention_heads": self.num_attention_heads,
            "inner_dim": self.inner_dim,
            "inner_activation": self.inner_activation,
            "output_range": self.output_range,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint,
            "bias_constraint": self.bias_constraint,
            "use_bias": self.use_bias,
            "norm_first": self.norm_first,
            "norm_epsilon": self.norm_epsilon,
            "output_dropout": self.output_dropout,
            "attention_dropout": self.attention_dropout,
            "inner_dropout": self.inner_dropout,
            "attention_initializer": self.attention_initializer,
            "attention_axes": self.attention_axes,
            "use_query_residual": self.use_query_residual,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "output_last_dim": self.output_last_dim,
            "diff_q_kv_att_layer_norm": self.diff_q_kv_att_layer_norm,
            "return_attention_scores": self.return_attention_scores,
        }
