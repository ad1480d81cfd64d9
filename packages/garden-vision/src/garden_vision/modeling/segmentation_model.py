"""`SegmentationModel`: backbone, decoder and segmentation head (Model Garden's).

Images go through the backbone, then the decoder (e.g. ASPP or FPN), then the head, which
reads both the backbone's and the decoder's features: feature fusion such as DeepLabV3+'s is
part of the head, so any fusion combines with any backbone and decoder. The model is built
by `garden_vision.modeling.factory.build_segmentation_model` from a
`configs.semantic_segmentation.SemanticSegmentationModel` config (the
`semantic_segmentation` entry of `garden.models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras


def _serialize(layer: keras.layers.Layer | None) -> Any:
    return None if layer is None else keras.saving.serialize_keras_object(layer)


@keras.saving.register_keras_serializable(package="garden_vision")
class SegmentationModel(keras.Model):
    """A semantic segmentation model: `{"logits": head((backbone(x), decoder(backbone(x))))}`.

    Called on `[batch, height, width, channels]` images, it returns `{"logits": [batch,
    H_l, W_l, num_classes]}`, the head's float32 logits at the head's resolution (e.g.
    stride 4 for DeepLabV3+, 16 for DeepLabV3); the losses and metrics resize them to the
    masks' size.

    Example:

    ```python
    model = factory.build_segmentation_model(
        keras.layers.InputSpec(shape=[None, 512, 512, 3]), segmentation_config)
    logits = model(images, training=False)["logits"]  # (batch, 128, 128, 21)
    ```

    Args:
      backbone: A backbone returning a dict of features by endpoint (`"2"`, `"3"`, ...).
      decoder: A decoder mapping those to the features the head reads (e.g. `ASPP`,
        `FPN`), or None to give the head the backbone's features twice.
      head: The segmentation head (`heads.SegmentationHead`), called on
        `(backbone_features, decoder_features)`.
      **kwargs: Passed to `keras.Model` (e.g. `name`).
    """

    def __init__(
        self,
        backbone: keras.Model,
        decoder: keras.layers.Layer | None,
        head: keras.layers.Layer,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.decoder = decoder
        self.head = head

    @property
    def checkpoint_items(self) -> dict[str, keras.layers.Layer]:
        """Sub-modules a partial checkpoint restore can name (`init_checkpoint_modules`)."""
        items = {"backbone": self.backbone, "head": self.head}
        if self.decoder is not None:
            items["decoder"] = self.decoder
        return items

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Creates every weight by running the backbone, decoder and head symbolically."""
        images = keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype)
        features = self.backbone(images)
        decoded = features if self.decoder is None else self.decoder(features)
        self.head((features, decoded))

    def call(self, inputs: Any, training: bool | None = None) -> dict[str, Any]:
        """Returns `{"logits": ...}` for a batch of images (see the class docstring)."""
        features = self.backbone(inputs, training=training)
        decoded = features if self.decoder is None else self.decoder(features, training=training)
        return {"logits": self.head((features, decoded), training=training)}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "backbone": _serialize(self.backbone),
            "decoder": _serialize(self.decoder),
            "head": _serialize(self.head),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> SegmentationModel:
        config = dict(config)
        for key in ("backbone", "decoder", "head"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)
