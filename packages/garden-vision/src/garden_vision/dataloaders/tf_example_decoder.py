"""Decodes Model Garden's object-detection tf.Examples (`dataloaders.tf_example_decoder`).

The record layout is the one Model Garden's and the TF Object Detection API's converters write
(and `garden-coco-to-tfrecords` writes):

| feature                                   | type          | if missing                  |
|-------------------------------------------|---------------|-----------------------------|
| `image/encoded`                           | bytes (JPEG, PNG, BMP, GIF) | required      |
| `image/source_id`                         | bytes         | a hash of the image bytes   |
| `image/height`, `image/width`             | int64         | read from the decoded image |
| `image/object/bbox/{ymin,xmin,ymax,xmax}` | float list, normalized | no objects         |
| `image/object/class/label`                | int64 list    | no objects                  |
| `image/object/is_crowd`                   | int64 list    | all False                   |
| `image/object/area`                       | float list    | box area in pixels          |
| `image/object/mask`                       | PNG bytes list (with `include_mask`) | no masks |
| `image/object/attribute/{name}`           | int64 list (with `attribute_names`) | none  |

`decode(serialized)` returns `source_id`, `image` (uint8 `[height, width, 3]`), `height`,
`width`, `groundtruth_classes` (int64 `[N]`), `groundtruth_is_crowd` (bool `[N]`),
`groundtruth_area` (float32 `[N]`), `groundtruth_boxes` (float32 `[N, 4]` normalized
`[ymin, xmin, ymax, xmax]`), and with `include_mask` `groundtruth_instance_masks` (float32
`[N, height, width]`) and `groundtruth_instance_masks_png` (string `[N]`); with
`attribute_names`, `groundtruth_attributes` maps each name to an int64 `[N, 1]` tensor.

A record whose per-object lists disagree in length (say four `xmin` values for three labels)
fails with `tf.errors.InvalidArgumentError` naming its `source_id`.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from garden_vision.dataloaders import utils

__all__ = ["TfExampleDecoder"]

# Generated source ids hash into 22 bits, which float32 evaluators hold exactly.
_SOURCE_ID_BUCKETS = 2**22 - 1


def _generated_source_id(image_bytes: tf.Tensor) -> tf.Tensor:
    return tf.strings.as_string(tf.strings.to_hash_bucket_fast(image_bytes, _SOURCE_ID_BUCKETS))


class TfExampleDecoder:
    """Decodes serialized detection tf.Examples into a dict of tensors.

    Args:
      include_mask: Also decode the instance masks (`image/object/mask`, one PNG per object).
      regenerate_source_id: Ignore `image/source_id` and use a hash of the encoded image.
      mask_binarize_threshold: If set, masks become 1.0 where above it and 0.0 elsewhere;
        otherwise they keep the PNG's 0-255 values as float32.
      attribute_names: Per-object integer attributes to decode from
        `image/object/attribute/{name}`.

    Example:
    ```python
    decoder = TfExampleDecoder()
    dataset = tf.data.TFRecordDataset(files).map(decoder.decode)
    ```
    """

    def __init__(
        self,
        include_mask: bool = False,
        regenerate_source_id: bool = False,
        mask_binarize_threshold: float | None = None,
        attribute_names: Sequence[str] | None = None,
    ):
        self._include_mask = bool(include_mask)
        self._regenerate_source_id = bool(regenerate_source_id)
        self._mask_binarize_threshold = mask_binarize_threshold
        self._attribute_names = list(attribute_names or [])
        self._keys_to_features: dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature] = {
            "image/encoded": tf.io.FixedLenFeature((), tf.string),
            "image/source_id": tf.io.FixedLenFeature((), tf.string, default_value=""),
            "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=-1),
            "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=-1),
            "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
            "image/object/class/label": tf.io.VarLenFeature(tf.int64),
            "image/object/area": tf.io.VarLenFeature(tf.float32),
            "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
        }
        for name in self._attribute_names:
            self._keys_to_features[f"image/object/attribute/{name}"] = tf.io.VarLenFeature(tf.int64)
        if self._include_mask:
            self._keys_to_features["image/object/mask"] = tf.io.VarLenFeature(tf.string)

    # Pieces that subclasses (e.g. the label-map decoder) override.

    def _parse(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_single_example(serialized_example, self._keys_to_features)
        for key, value in parsed.items():
            if isinstance(value, tf.SparseTensor):
                default = "" if value.dtype == tf.string else 0
                parsed[key] = tf.sparse.to_dense(value, default_value=default)
        return parsed

    def _decode_image(self, parsed: dict[str, tf.Tensor]) -> tf.Tensor:
        image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return image

    def _decode_boxes(self, parsed: dict[str, tf.Tensor]) -> tf.Tensor:
        keys = ("ymin", "xmin", "ymax", "xmax")
        return tf.stack([parsed[f"image/object/bbox/{key}"] for key in keys], axis=-1)

    def _decode_classes(self, parsed: dict[str, tf.Tensor]) -> tf.Tensor:
        return parsed["image/object/class/label"]

    def _decode_areas(
        self, parsed: dict[str, tf.Tensor], boxes: tf.Tensor, height: tf.Tensor, width: tf.Tensor
    ) -> tf.Tensor:
        areas = parsed["image/object/area"]
        pixels = tf.cast(height * width, tf.float32)
        box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) * pixels
        return tf.cond(tf.size(areas) > 0, lambda: areas, lambda: box_areas)

    def _decode_masks(
        self, parsed: dict[str, tf.Tensor], height: tf.Tensor, width: tf.Tensor
    ) -> tf.Tensor:
        pngs = parsed["image/object/mask"]

        def decode_one(png: tf.Tensor) -> tf.Tensor:
            mask = tf.io.decode_png(png, channels=1)[:, :, 0]
            return tf.cast(mask, tf.float32)

        masks = tf.cond(
            tf.size(pngs) > 0,
            lambda: tf.map_fn(
                decode_one, pngs, fn_output_signature=tf.TensorSpec([None, None], tf.float32)
            ),
            lambda: tf.zeros(tf.stack([0, height, width]), tf.float32),
        )
        if self._mask_binarize_threshold is not None:
            masks = tf.cast(masks > self._mask_binarize_threshold, tf.float32)
        return masks

    def _check_lengths(
        self, parsed: dict[str, tf.Tensor], classes: tf.Tensor, source_id: tf.Tensor
    ) -> tf.Operation:
        """Checks that every per-object list has one entry per object (optional ones or none)."""
        count = tf.size(classes)
        required = [
            tf.size(parsed[f"image/object/bbox/{k}"]) for k in ("ymin", "xmin", "ymax", "xmax")
        ]
        optional = [tf.size(parsed[key]) for key in ("image/object/area", "image/object/is_crowd")]
        if self._include_mask:
            optional.append(tf.size(parsed["image/object/mask"]))
        ok = tf.reduce_all(tf.equal(tf.stack(required), count))
        ok &= tf.reduce_all((tf.stack(optional) == count) | (tf.stack(optional) == 0))
        return utils.check_record(
            ok,
            source_id,
            "the per-object lists image/object/bbox/{ymin,xmin,ymax,xmax}, class, area, "
            "is_crowd and mask must all have one entry per object",
        )

    def decode(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
        """Decodes one serialized tf.Example (see the module docstring for the output)."""
        parsed = self._parse(serialized_example)
        image = self._decode_image(parsed)
        image_size = tf.cast(tf.shape(image)[:2], tf.int64)
        missing_size = (parsed["image/height"] < 0) | (parsed["image/width"] < 0)
        height = tf.where(missing_size, image_size[0], parsed["image/height"])
        width = tf.where(missing_size, image_size[1], parsed["image/width"])

        if self._regenerate_source_id:
            source_id = _generated_source_id(parsed["image/encoded"])
        else:
            given = parsed["image/source_id"]
            source_id = tf.cond(
                tf.strings.length(given) > 0,
                lambda: given,
                lambda: _generated_source_id(parsed["image/encoded"]),
            )

        classes = self._decode_classes(parsed)
        with tf.control_dependencies([self._check_lengths(parsed, classes, source_id)]):
            boxes = self._decode_boxes(parsed)
        is_crowd = parsed["image/object/is_crowd"]
        is_crowd = tf.cond(
            tf.size(is_crowd) > 0,
            lambda: tf.cast(is_crowd, tf.bool),
            lambda: tf.zeros_like(classes, dtype=tf.bool),
        )
        decoded = {
            "source_id": source_id,
            "image": image,
            "height": height,
            "width": width,
            "groundtruth_classes": classes,
            "groundtruth_is_crowd": is_crowd,
            "groundtruth_area": self._decode_areas(parsed, boxes, height, width),
            "groundtruth_boxes": boxes,
        }
        if self._attribute_names:
            decoded["groundtruth_attributes"] = {
                name: parsed[f"image/object/attribute/{name}"][:, None]
                for name in self._attribute_names
            }
        if self._include_mask:
            decoded["groundtruth_instance_masks"] = self._decode_masks(parsed, height, width)
            decoded["groundtruth_instance_masks_png"] = parsed["image/object/mask"]
        return decoded

    __call__ = decode
