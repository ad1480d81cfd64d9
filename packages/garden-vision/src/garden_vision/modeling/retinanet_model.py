"""`RetinaNetModel`: backbone, decoder, dense head and detection generator (Model Garden's).

RetinaNet (Lin et al., 2017) is a one-stage detector: a backbone and a feature pyramid
(the decoder, e.g. FPN) give features at levels `min_level` to `max_level`; a dense head
predicts class logits and box offsets for every anchor of every level; at inference the
detection generator decodes the offsets against the anchors, scores them with sigmoids and
keeps the best boxes after non-maximum suppression.

The model is built by `garden_vision.modeling.factory.build_retinanet` from a
`configs.retinanet.RetinaNet` config (the `retinanet` entry of `garden.models`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from garden_vision.ops.anchor import Anchor

#: The training outputs' key of the attribute predictions (name -> level -> logits).
ATTRIBUTE_OUTPUTS = "attribute_outputs"


def _serialize(layer: keras.layers.Layer | None) -> Any:
    return None if layer is None else keras.saving.serialize_keras_object(layer)


@keras.saving.register_keras_serializable(package="garden_vision")
class RetinaNetModel(keras.Model):
    """The RetinaNet detector.

    Called as `model(images, image_shape=None, anchor_boxes=None,
    output_intermediate_features=False, training=None)` on `[batch, height, width, 3]`
    images, it returns a dict:

    - always `cls_outputs` (level -> `[batch, H_l, W_l, A * num_classes]` logits) and
      `box_outputs` (level -> `[batch, H_l, W_l, A * 4]` encoded offsets), plus
      `attribute_outputs` (name -> level -> predictions) with attribute heads: this is all
      training returns (the inputs of `losses.retinanet_losses`);
    - otherwise also the detection generator's results: `detection_boxes` (`[batch, M, 4]`
      pixel yxyx), `detection_scores`, `detection_classes`, `num_detections` (and
      `detection_attributes`), or `decoded_boxes` and `decoded_box_scores` when the
      generator applies no NMS (or returns them too, with `return_decoded`);
    - with `output_intermediate_features`, the backbone's and decoder's features as
      `backbone_{level}` and `decoder_{level}`.

    At inference the anchors are, in order: the `anchor_boxes` given to the constructor,
    those given to the call, or anchors made from the images' (static) height and width
    with `min_level`, `max_level`, `num_scales`, `aspect_ratios` and `anchor_size`.
    `image_shape` (`[batch, 2]`, the height and width of each image without padding) is
    what the detections are clipped to; by default the whole input image.

    Example:

    ```python
    model = factory.build_retinanet(
        keras.layers.InputSpec(shape=[None, 640, 640, 3]), retinanet_config)
    outputs = model(images, training=False)  # outputs["detection_boxes"]: (B, 100, 4)
    ```

    Args:
      backbone: A backbone returning a dict of features by level (`"2"`, `"3"`, ...).
      decoder: A decoder mapping those to the head's levels (e.g. FPN), or None to feed
        the backbone's features to the head directly (e.g. SpineNet).
      head: The dense head (`heads.RetinaNetHead`), returning `(scores, boxes,
        attributes)`.
      detection_generator: The inference post-processing
        (`layers.MultilevelDetectionGenerator`).
      anchor_boxes: Fixed anchors for inference, level -> `[H_l, W_l, A * 4]` pixel yxyx,
        or None.
      min_level, max_level: The levels the head predicts (by default the head's).
      num_scales: Anchor scales per octave.
      aspect_ratios: Anchor width / height ratios.
      anchor_size: The base anchor side in strides.
      **kwargs: Passed to `keras.Model` (e.g. `name`).
    """

    def __init__(
        self,
        backbone: keras.Model,
        decoder: keras.layers.Layer | None,
        head: keras.layers.Layer,
        detection_generator: keras.layers.Layer,
        anchor_boxes: Mapping[str, Any] | None = None,
        min_level: int | None = None,
        max_level: int | None = None,
        num_scales: int | None = None,
        aspect_ratios: Sequence[float] | None = None,
        anchor_size: float | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.decoder = decoder
        self.head = head
        self.detection_generator = detection_generator
        self.min_level = min_level if min_level is not None else getattr(head, "min_level", None)
        self.max_level = max_level if max_level is not None else getattr(head, "max_level", None)
        self.num_scales = num_scales
        self.aspect_ratios = None if aspect_ratios is None else [float(r) for r in aspect_ratios]
        self.anchor_size = anchor_size
        # NumPy arrays, not variables: anchors are constants of the model, not weights.
        self._fixed_anchors = (
            None
            if anchor_boxes is None
            else {
                str(level): np.asarray(keras.ops.convert_to_numpy(boxes), np.float32)
                for level, boxes in anchor_boxes.items()
            }
        )

    @property
    def anchor_boxes(self) -> dict[str, Any] | None:
        """The fixed inference anchors given to the constructor (level -> tensor), or None."""
        if self._fixed_anchors is None:
            return None
        return {level: ops.convert_to_tensor(boxes) for level, boxes in self._fixed_anchors.items()}

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
        if self.decoder is not None:
            features = self.decoder(features)
        self.head(features)

    def _make_anchors(self, images: Any) -> dict[str, Any]:
        """Anchors for the images' static height and width, from the anchor settings."""
        missing = [
            name
            for name in ("min_level", "max_level", "num_scales", "aspect_ratios", "anchor_size")
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(
                f"RetinaNetModel: to make anchors at inference it needs {missing} (or "
                "`anchor_boxes`, given to the constructor or the call)"
            )
        height, width = images.shape[1], images.shape[2]
        if height is None or width is None:
            raise ValueError(
                "RetinaNetModel: images of unknown height or width (shape "
                f"{tuple(images.shape)}) need `anchor_boxes` at inference"
            )
        return Anchor(
            min_level=self.min_level,
            max_level=self.max_level,
            num_scales=self.num_scales,
            aspect_ratios=self.aspect_ratios,
            anchor_size=self.anchor_size,
            image_size=(height, width),
        ).multilevel_boxes

    def call(
        self,
        images: Any,
        image_shape: Any = None,
        anchor_boxes: Mapping[str, Any] | None = None,
        output_intermediate_features: bool = False,
        training: bool | None = None,
    ) -> dict[str, Any]:
        """Runs the detector (see the class docstring for the outputs).

        Args:
          images: `[batch, height, width, channels]` images.
          image_shape: `[batch, 2]` height and width of each image without padding, or
            None for the whole image.
          anchor_boxes: Inference anchors, level -> `[H_l, W_l, A * 4]` (or batched), used
            when the constructor was given none.
          output_intermediate_features: Also return the backbone's and decoder's features.
          training: Training mode: returns the raw predictions only.
        """
        outputs: dict[str, Any] = {}
        features = self.backbone(images, training=training)
        if output_intermediate_features:
            outputs.update({f"backbone_{key}": value for key, value in features.items()})
        if self.decoder is not None:
            features = self.decoder(features, training=training)
            if output_intermediate_features:
                outputs.update({f"decoder_{key}": value for key, value in features.items()})

        raw_scores, raw_boxes, raw_attributes = self.head(features, training=training)
        outputs["cls_outputs"] = raw_scores
        outputs["box_outputs"] = raw_boxes
        if training:
            if raw_attributes:
                outputs[ATTRIBUTE_OUTPUTS] = raw_attributes
            return outputs

        if self._fixed_anchors is not None:
            anchor_boxes = self.anchor_boxes
        elif anchor_boxes is None:
            anchor_boxes = self._make_anchors(images)
        batch_size = ops.shape(images)[0]
        anchor_boxes = {
            str(level): (
                boxes
                if len(boxes.shape) == 4
                else ops.tile(ops.expand_dims(boxes, 0), [batch_size, 1, 1, 1])
            )
            for level, boxes in anchor_boxes.items()
        }
        if image_shape is None:
            size = ops.cast(ops.shape(images)[1:3], "float32")
            image_shape = ops.tile(ops.expand_dims(size, 0), [batch_size, 1])

        results = self.detection_generator(
            raw_boxes, raw_scores, anchor_boxes, image_shape, raw_attributes or None
        )
        generator_config = self.detection_generator.get_config()
        decoded_keys = ("decoded_boxes", "decoded_box_scores", "decoded_box_attributes")
        if generator_config.get("apply_nms", True):
            for key in ("detection_boxes", "detection_scores", "detection_classes"):
                outputs[key] = results[key]
            outputs["num_detections"] = results["num_detections"]
            if generator_config.get("return_decoded"):
                outputs.update({k: results[k] for k in decoded_keys if results.get(k) is not None})
        else:
            outputs.update({k: results[k] for k in decoded_keys if results.get(k) is not None})
        if raw_attributes:
            outputs[ATTRIBUTE_OUTPUTS] = raw_attributes
            if results.get("detection_attributes") is not None:
                outputs["detection_attributes"] = results["detection_attributes"]
        return outputs

    def get_config(self) -> dict[str, Any]:
        anchors = (
            None
            if self._fixed_anchors is None
            else {level: boxes.tolist() for level, boxes in self._fixed_anchors.items()}
        )
        return {
            **super().get_config(),
            "backbone": _serialize(self.backbone),
            "decoder": _serialize(self.decoder),
            "head": _serialize(self.head),
            "detection_generator": _serialize(self.detection_generator),
            "anchor_boxes": anchors,
            "min_level": self.min_level,
            "max_level": self.max_level,
            "num_scales": self.num_scales,
            "aspect_ratios": None if self.aspect_ratios is None else list(self.aspect_ratios),
            "anchor_size": self.anchor_size,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> RetinaNetModel:
        config = dict(config)
        for key in ("backbone", "decoder", "head", "detection_generator"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        if config.get("anchor_boxes") is not None:
            config["anchor_boxes"] = {
                level: np.asarray(boxes, np.float32)
                for level, boxes in config["anchor_boxes"].items()
            }
        return cls(**config)
