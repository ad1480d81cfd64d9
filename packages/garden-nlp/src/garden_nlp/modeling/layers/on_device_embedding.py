"""`OnDeviceEmbedding`: a token-id -> vector lookup table (Model Garden's layer of that name).

By default the lookup is a gather, the fastest choice on CPUs and GPUs. On TPUs a one-hot
matrix multiply is usually faster for small vocabularies (such as BERT's two token types), so
`use_one_hot=True` computes `one_hot(ids) @ table` instead; both give the same vectors.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="garden_nlp")
class OnDeviceEmbedding(keras.layers.Layer):
    """Looks up a learned `[vocab_size, embedding_width]` table for integer ids.

    Called on ids of any shape `[...]`, returns `[..., embedding_width]`.

    Example:

        embedding = OnDeviceEmbedding(vocab_size=30522, embedding_width=768)
        vectors = embedding(tf.constant([[101, 2023, 102]]))  # [1, 3, 768]

    Args:
      vocab_size: Number of rows of the table (ids are in `[0, vocab_size)`).
      embedding_width: Width of each vector.
      initializer: Initializer of the table.
      use_one_hot: Look ids up with a one-hot matrix multiply (faster on TPUs for small
        tables) instead of a gather.
      scale_factor: If set, the looked-up vectors are multiplied by it (e.g. `sqrt(width)`
        for Transformer-style models).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Attributes:
      embeddings: The table, a variable of shape `[vocab_size, embedding_width]` (after the
        layer is built).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_width: int,
        initializer: str | keras.initializers.Initializer | dict = "glorot_uniform",
        use_one_hot: bool = False,
        scale_factor: float | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if int(vocab_size) < 1 or int(embedding_width) < 1:
            raise ValueError(
                f"OnDeviceEmbedding `{self.name}` needs vocab_size and embedding_width >= 1, "
                f"got {vocab_size} and {embedding_width}"
            )
        self.vocab_size = int(vocab_size)
        self.embedding_width = int(embedding_width)
        self.initializer = keras.initializers.serialize(keras.initializers.get(initializer))
        self.use_one_hot = bool(use_one_hot)
        self.scale_factor = None if scale_factor is None else float(scale_factor)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.embedding_width),
            initializer=keras.initializers.get(self.initializer),
            # Read in float32 and cast after the lookup, so that mixed precision casts
            # `[batch, seq, width]` vectors, not the whole table, at every step.
            autocast=False,
        )

    def call(self, inputs):
        ids = tf.convert_to_tensor(inputs)
        if not ids.dtype.is_integer:
            ids = tf.cast(ids, tf.int32)
        if self.use_one_hot:
            flat_ids = tf.reshape(ids, [-1])
            one_hot = tf.one_hot(flat_ids, depth=self.vocab_size, dtype=self.compute_dtype)
            flat = tf.matmul(one_hot, tf.cast(self.embeddings, self.compute_dtype))
            outputs = tf.reshape(flat, tf.concat([tf.shape(ids), [self.embedding_width]], 0))
            outputs.set_shape(ids.shape.concatenate(self.embedding_width))
        else:
            outputs = tf.cast(tf.gather(self.embeddings, ids), self.compute_dtype)
        if self.scale_factor is not None:
            outputs = outputs * tf.cast(self.scale_factor, outputs.dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.embedding_width)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_width": self.embedding_width,
            "initializer": self.initializer,
            "use_one_hot": self.use_one_hot,
            "scale_factor": self.scale_factor,
        }
