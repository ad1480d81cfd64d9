"""Image ops for vision input pipelines: preprocessing and training-time augmentation.

`preprocess_ops` decodes, crops, resizes, flips, jitters and normalizes images (Model Garden's
`official.vision.ops.preprocess_ops`); `augment` holds RandAugment, AutoAugment, RandomErasing
and Mixup/CutMix (`official.vision.ops.augment`). Both are written with TensorFlow ops so
they run inside `tf.data` map functions as well as eagerly.
"""

from garden_vision.ops.augment import (
    AUTOAUGMENT_POLICIES,
    RANDAUGMENT_OPS,
    AutoAugment,
    MixupAndCutmix,
    RandAugment,
    RandomErasing,
    apply_augmentation_op,
)
from garden_vision.ops.preprocess_ops import (
    CENTER_CROP_FRACTION,
    MEAN_NORM,
    MEAN_RGB,
    STDDEV_NORM,
    STDDEV_RGB,
    center_crop_image,
    color_jitter,
    decode_and_center_crop,
    decode_and_random_crop,
    horizontal_flip_boxes,
    label_smoothing,
    normalize_image,
    random_crop_image,
    random_horizontal_flip,
    resize_and_crop_image,
    resize_image_with_aspect_ratio,
)

__all__ = [
    "AUTOAUGMENT_POLICIES",
    "CENTER_CROP_FRACTION",
    "MEAN_NORM",
    "MEAN_RGB",
    "RANDAUGMENT_OPS",
    "STDDEV_NORM",
    "STDDEV_RGB",
    "AutoAugment",
    "MixupAndCutmix",
    "RandAugment",
    "RandomErasing",
    "apply_augmentation_op",
    "center_crop_image",
    "color_jitter",
    "decode_and_center_crop",
    "decode_and_random_crop",
    "horizontal_flip_boxes",
    "label_smoothing",
    "normalize_image",
    "random_crop_image",
    "random_horizontal_flip",
    "resize_and_crop_image",
    "resize_image_with_aspect_ratio",
]
