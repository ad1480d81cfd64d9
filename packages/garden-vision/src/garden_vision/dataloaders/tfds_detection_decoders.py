"""Decoders from TFDS detection datasets to the detection parsers' input dict.

Model Garden's `dataloaders.tfds_detection_decoders`: a TFDS element becomes the same dict
`TfExampleDecoder` returns (`source_id`, `image`, `height`, `width`, `groundtruth_classes`,
`groundtruth_is_crowd`, `groundtruth_area`, `groundtruth_boxes`), so a task reads TFRecords or
TFDS with one parser. `TFDS_ID_TO_DECODER_MAP` gives the decoder class of a `tfds_name`.

TFDS `coco/2017` and `coco/2014` number the 80 COCO categories 0-79 (their `ClassLabel`
order), while COCO annotation files, Model Garden's TFRecords and the COCO evaluator use the
original category ids 1-90 with gaps, class 0 being background. `MSCOCODecoder` maps the TFDS
index back to the COCO id by default (`coco_category_ids=True`), so a 91-class model trains on
either source and evaluates against COCO annotation files. Model Garden passes the 0-79 index
through, which makes `person` the background class; `coco_category_ids=False` does that.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["COCO_CATEGORY_IDS", "GardenShapesDecoder", "MSCOCODecoder", "TFDS_ID_TO_DECODER_MAP"]

# The COCO category id of each of TFDS's 80 COCO labels, in TFDS's label order (the order of
# the `categories` of the COCO 2014/2017 annotation files: 1-90 without 12, 26, 29, 30, 45,
# 66, 68, 69, 71 and 83).
_UNUSED_COCO_IDS = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})
COCO_CATEGORY_IDS: tuple[int, ...] = tuple(i for i in range(1, 91) if i not in _UNUSED_COCO_IDS)


class MSCOCODecoder:
    """Decodes TFDS `coco/2017` and `coco/2014` elements.

    Args:
      coco_category_ids: Map TFDS's 0-79 labels to COCO category ids 1-90 (see the module
        docstring); False keeps the 0-79 index, as Model Garden does.

    Example:
    ```python
    dataset = tfds.load("coco/2017", split="validation").map(MSCOCODecoder().decode)
    ```
    """

    def __init__(self, coco_category_ids: bool = True):
        self._coco_category_ids = bool(coco_category_ids)

    def decode(self, element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Returns the detection dict of one TFDS COCO element.

        Args:
          element: A TFDS COCO element: `image` (uint8 `[height, width, 3]`), `image/id`
            (int64) and `objects` with `bbox` (normalized `[ymin, xmin, ymax, xmax]`),
            `label`, `is_crowd` and `area`.
        """
        image = element["image"]
        objects = element["objects"]
        size = tf.shape(image, out_type=tf.int64)
        labels = tf.cast(objects["label"], tf.int64)
        if self._coco_category_ids:
            labels = tf.gather(tf.constant(COCO_CATEGORY_IDS, tf.int64), labels)
        return {
            "source_id": tf.strings.as_string(element["image/id"]),
            "image": image,
            "height": size[0],
            "width": size[1],
            "groundtruth_classes": labels,
            "groundtruth_is_crowd": tf.cast(objects["is_crowd"], tf.bool),
            "groundtruth_area": tf.cast(objects["area"], tf.float32),
            "groundtruth_boxes": tf.cast(objects["bbox"], tf.float32),
            **(
                {
                    "groundtruth_instance_masks": tf.cast(
                        element["instance_masks"][..., 0], tf.float32
                    )
                }
                if "instance_masks" in element
                else {}
            ),
        }

    __call__ = decode


class GardenShapesDecoder:
    """Decodes garden-vision's generated `garden_shapes` (e.g. `garden_shapes/multi`).

    Shape classes 0-8 become detection classes 1-9 (class 0 is background), so a detector
    on this dataset has `num_classes` 10. The dataset has no image ids: `source_id` is a
    hash of the image's pixels (distinct for every generated image), as Model Garden's
    `regenerate_source_id` does for records without ids. No object is a crowd; `area` is
    the visible pixel count. Configs with instance masks (`multi`) also give
    `groundtruth_instance_masks` (float32 `[N, height, width]` of 0/1), as the detection
    `TfExampleDecoder` does with `include_mask`.
    """

    def decode(self, element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Returns the detection dict of one `garden_shapes` element."""
        image = element["image"]
        objects = element["objects"]
        size = tf.shape(image, out_type=tf.int64)
        source_id = tf.strings.to_hash_bucket_fast(tf.io.serialize_tensor(image), 2**31 - 1)
        labels = tf.cast(objects["label"], tf.int64) + 1
        return {
            "source_id": tf.strings.as_string(source_id),
            "image": image,
            "height": size[0],
            "width": size[1],
            "groundtruth_classes": labels,
            "groundtruth_is_crowd": tf.zeros_like(labels, tf.bool),
            "groundtruth_area": tf.cast(objects["area"], tf.float32),
            "groundtruth_boxes": tf.cast(objects["bbox"], tf.float32),
            **(
                {
                    "groundtruth_instance_masks": tf.cast(
                        element["instance_masks"][..., 0], tf.float32
                    )
                }
                if "instance_masks" in element
                else {}
            ),
        }

    __call__ = decode


# `tfds_name` -> decoder class (called without arguments).
TFDS_ID_TO_DECODER_MAP: dict[str, type[MSCOCODecoder] | type[GardenShapesDecoder]] = {
    "coco/2017": MSCOCODecoder,
    "coco/2014": MSCOCODecoder,
    "coco": MSCOCODecoder,
    "garden_shapes": GardenShapesDecoder,
}
