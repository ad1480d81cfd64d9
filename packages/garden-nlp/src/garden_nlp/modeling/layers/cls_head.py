"""`ClassificationHead`: a sentence-level classifier on top of an encoder's sequence output.

It pools one token (BERT's [CLS], position 0), transforms it with a dense layer and an
activation (BERT's pooler: tanh), applies dropout and projects to class logits. With
`inner_dim=0` there is no transform: the input is taken as already pooled (e.g. the
encoder's `pooled_output`) and only the projection is applied.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_nlp.modeling.layers.transformer_encoder_block import serialize_activation


@keras.saving.register_keras_serializable(package="garden_nlp")
class ClassificationHead(keras.layers.Layer):
    """Pools a token of the sequence output and predicts class logits.

    Called on `[batch, seq, hidden]` (or `[batch, hidden]` when `inner_dim` is 0), returns
    `[batch, num_classes]`.

    Example (BERT's next-sentence head):

        head = ClassificationHead(inner_dim=768, num_classes=2, name="next_sentence")
        logits = head(outputs["sequence_output"])

    Args:
      inner_dim: Width of the transform layer; 0 (or None) for no transform, in which case
        the input must already be pooled `[batch, hidden]`.
      num_classes: Number of output classes.
      cls_token_idx: The sequence position to pool.
      activation: Activation of the transform layer.
      dropout_rate: Dropout rate before the output projection.
      initializer: Initializer of the dense kernels.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).

    Attributes:
      dense: The transform, `keras.layers.Dense(inner_dim, activation)`, or None.
      out_proj: The output projection, `keras.layers.Dense(num_classes)`.
    """

    def __init__(
        self,
        inner_dim: int | None,
        num_classes: int,
        cls_token_idx: int = 0,
        activation: Any = "tanh",
        dropout_rate: float = 0.0,
        initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "cls_head")
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError(
                f"ClassificationHead `{self.name}` needs num_classes >= 1, got {num_classes}"
            )
        if not 0.0 <= float(dropout_rate) < 1.0:
            raise ValueError(
                f"ClassificationHead `{self.name}`: dropout_rate must be in [0, 1), got "
                f"{dropout_rate}"
            )
        self.inner_dim = int(inner_dim or 0)
        self.num_classes = int(num_classes)
        self.cls_token_idx = int(cls_token_idx)
        self.activation = serialize_activation(activation)
        self.dropout_rate = float(dropout_rate)
        self.initializer = keras.initializers.serialize(keras.initializers.get(initializer))
        self.dense = None
        if self.inner_dim:
            self.dense = keras.layers.Dense(
                self.inner_dim,
                activation=self.activation,
                kernel_initializer=keras.initializers.get(self.initializer),
                dtype=self.dtype_policy,
                name="pooler_dense",
            )
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)
        self.out_proj = keras.layers.Dense(
            self.num_classes,
            kernel_initializer=keras.initializers.get(self.initializer),
            dtype=self.dtype_policy,
            name="logits",
        )

    def build(self, input_shape):
        width = input_shape[-1]
        if self.dense is not None:
            if len(input_shape) != 3:
                raise ValueError(
                    f"ClassificationHead `{self.name}` with inner_dim={self.inner_dim} pools a "
                    f"token of a [batch, seq, hidden] input, got shape {tuple(input_shape)}"
                )
            self.dense.build((None, width))
            width = self.inner_dim
        self.out_proj.build((None, width))

    def call(self, features, only_project: bool = False, training=None):
        """Returns the logits, or with `only_project` the pooled, transformed features."""
        if self.dense is None:
            x = features
        else:
            x = self.dense(features[:, self.cls_token_idx, :])
        if only_project:
            return x
        x = self.dropout(x, training=training)
        return self.out_proj(x)

    @property
    def checkpoint_items(self) -> dict[str, keras.layers.Layer]:
        """The pooler transform, by its name (none when `inner_dim` is 0)."""
        return {} if self.dense is None else {self.dense.name: self.dense}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "inner_dim": self.inner_dim,
            "num_classes": self.num_classes,
            "cls_token_idx": self.cls_token_idx,
            "activation": self.activation,
            "dropout_rate": self.dropout_rate,
            "initializer": self.initializer,
        }
