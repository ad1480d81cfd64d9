"""Decoders from TFDS semantic segmentation datasets to the segmentation parser's input dict.

Model Garden's `dataloaders.tfds_segmentation_decoders`: a TFDS element becomes the dict
`segmentation_input.Decoder` returns (`image/encoded`, `image/height`, `image/width`,
`image/segmentation/class/encoded`), so a task reads TFRecords or TFDS with one
`segmentation_input.Parser`. `TFDS_ID_TO_DECODER_MAP` gives the decoder class of a
`tfds_name`.

Model Garden re-encodes the TFDS image as JPEG and the mask as PNG for its parser to decode
again; here the decoded uint8 image (`[height, width, 3]`) and mask (`[height, width, 1]`)
are handed over under the same keys, which `segmentation_input.Parser` accepts. That skips
an encode and a decode per example and keeps the pixels exact (a JPEG round trip changes
them).

- `CityScapesDecoder` (`cityscapes/semantic_segmentation`, ...): Cityscapes' 34 label ids
  become its 19 training classes (0 road ... 18 bicycle), every other id 255 (ignored), as
  in Model Garden (which spells the class `CityScapesDecorder`; that name is kept too).
- `OxfordIIITPetDecoder` (`oxford_iiit_pet`): the trimap values 1 (pet), 2 (background)
  and 3 (border) become classes 0, 1 and 2, as in Model Garden's segmentation tutorial
  (`num_classes: 3`).
- `GardenShapesSegmentationDecoder` (`garden_shapes/multi`, ...): the generated dataset's
  `segmentation_mask` as it is: 0 background, 1-9 the nine shapes (`num_classes: 10`).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "CITYSCAPES_LABEL_MAP",
    "CityScapesDecoder",
    "CityScapesDecorder",
    "GardenShapesSegmentationDecoder",
    "OxfordIIITPetDecoder",
    "TFDS_ID_TO_DECODER_MAP",
]

IGNORE_LABEL = 255

# Cityscapes label id -> training class (the `trainId` of cityscapesScripts' `labels.py`);
# ids not listed (0-6, 9, 10, 14-16, 18, 29, 30 and -1, license plate) are ignored.
CITYSCAPES_LABEL_MAP: dict[int, int] = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
_CITYSCAPES_MAX_ID = 33


def _as_mask(mask: tf.Tensor) -> tf.Tensor:
    mask = tf.convert_to_tensor(mask)
    if mask.shape.rank == 2:
        mask = mask[..., None]
    return tf.cast(mask, tf.uint8)


def _segmentation_dict(image: tf.Tensor, mask: tf.Tensor) -> dict[str, tf.Tensor]:
    image = tf.convert_to_tensor(image)
    size = tf.shape(image, out_type=tf.int64)
    return {
        "image/encoded": image,
        "image/height": size[0],
        "image/width": size[1],
        "image/segmentation/class/encoded": _as_mask(mask),
    }


class CityScapesDecoder:
    """Decodes TFDS `cityscapes` elements (`image_left`, `segmentation_label`).

    Label ids 0-33 map through `CITYSCAPES_LABEL_MAP` (unlisted ids to 255); values above
    33 are kept.

    Example:
    ```python
    dataset = tfds.load("cityscapes/semantic_segmentation", split="train")
    dataset = dataset.map(CityScapesDecoder().decode)
    ```
    """

    def __init__(self):
        # One lookup over every uint8 value: mapped ids, ignored ids, the rest unchanged.
        table = list(range(256))
        for label_id in range(_CITYSCAPES_MAX_ID + 1):
            table[label_id] = CITYSCAPES_LABEL_MAP.get(label_id, IGNORE_LABEL)
        self._table = tf.constant(table, tf.uint8)

    def decode(self, element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Returns the segmentation dict of one TFDS Cityscapes element."""
        label = tf.cast(_as_mask(element["segmentation_label"]), tf.int32)
        return _segmentation_dict(element["image_left"], tf.gather(self._table, label))

    __call__ = decode


# Model Garden's spelling of the class name.
CityScapesDecorder = CityScapesDecoder


class OxfordIIITPetDecoder:
    """Decodes TFDS `oxford_iiit_pet` elements: trimap values 1, 2, 3 become 0, 1, 2.

    Class 0 is the pet, 1 the background and 2 the uncertain border around the pet.
    """

    def decode(self, element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Returns the segmentation dict of one TFDS Oxford-IIIT Pet element."""
        return _segmentation_dict(element["image"], _as_mask(element["segmentation_mask"]) - 1)

    __call__ = decode


class GardenShapesSegmentationDecoder:
    """Decodes garden-vision's generated `garden_shapes` (e.g. `garden_shapes/multi`).

    The `segmentation_mask` is used as it is: 0 background, `k + 1` for shape class `k`,
    so a model on this dataset has `num_classes` 10.
    """

    def decode(self, element: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Returns the segmentation dict of one `garden_shapes` element."""
        return _segmentation_dict(element["image"], element["segmentation_mask"])

    __call__ = decode


# `tfds_name` -> decoder class (called without arguments).
TFDS_ID_TO_DECODER_MAP: dict[str, type] = {
    "cityscapes": CityScapesDecoder,
    "cityscapes/semantic_segmentation": CityScapesDecoder,
    "cityscapes/semantic_segmentation_extra": CityScapesDecoder,
    "oxford_iiit_pet": OxfordIIITPetDecoder,
    "garden_shapes": GardenShapesSegmentationDecoder,
    "garden_shapes/multi": GardenShapesSegmentationDecoder,
}
