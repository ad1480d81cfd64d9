"""`SelfAttentionMask`: turns a padding mask `[batch, seq]` into an attention mask.

Attention layers take a `[batch, from_seq, to_seq]` mask saying which keys each query may
attend to. For self-attention over a padded batch every query may attend to every real
(non-padding) token, so the mask is the padding mask repeated for each query position. An
encoder computes it once per call and hands it to all its layers.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="garden_nlp")
class SelfAttentionMask(keras.layers.Layer):
    """Builds a `[batch, from_seq, to_seq]` attention mask from a `[batch, to_seq]` mask.

    Call it as `mask_layer(inputs, to_mask)` with `inputs` the query sequence `[batch,
    from_seq, ...]` (its length and float dtype are used) and `to_mask` the `[batch, to_seq]`
    padding mask of the keys (1 for real tokens, 0 for padding); `mask_layer([inputs,
    to_mask])` is the same. `mask_layer(to_mask)` alone is self-attention over the masked
    sequence itself (`from_seq == to_seq`), in the layer's compute dtype.

    The result holds 1.0 where attention is allowed and 0.0 elsewhere, in the float dtype
    of `inputs` (the compute dtype, under mixed precision).
    """

    def call(self, inputs, to_mask=None):
        if isinstance(inputs, (list, tuple)):
            if to_mask is not None or len(inputs) != 2:
                raise ValueError(
                    f"SelfAttentionMask `{self.name}` takes [inputs, to_mask] or "
                    "(inputs, to_mask) or a mask alone"
                )
            inputs, to_mask = inputs
        if to_mask is None:
            to_mask = inputs
            dtype = self.compute_dtype
        else:
            dtype = inputs.dtype if inputs.dtype.is_floating else self.compute_dtype
        to_mask = tf.convert_to_tensor(to_mask)
        batch_size = tf.shape(to_mask)[0]
        from_length = tf.shape(inputs)[1]
        to_mask = tf.cast(tf.expand_dims(to_mask, axis=1), dtype)  # [batch, 1, to_seq]
        return tf.ones([batch_size, from_length, 1], dtype=dtype) * to_mask

    def compute_output_shape(self, input_shape, to_mask_shape=None):
        if (
            to_mask_shape is None
            and isinstance(input_shape, (list, tuple))
            and len(input_shape) == 2
            and isinstance(input_shape[0], (list, tuple))
        ):
            input_shape, to_mask_shape = input_shape
        to_mask_shape = input_shape if to_mask_shape is None else to_mask_shape
        return (input_shape[0], input_shape[1], to_mask_shape[1])
