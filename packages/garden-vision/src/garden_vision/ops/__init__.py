"""Image ops for vision input pipelines: preprocessing and training-time augmentation.

`preprocess_ops` decodes, crops, resizes, flips, jitters and normalizes images (Model Garden's
`official.vision.ops.preprocess_ops`); `augment` holds RandAugment, AutoAugment, RandomErasing
and Mixup/CutMix (`official.vision.ops.augment`). Both are written with TensorFlow ops so
they run inside `tf.data` map functions as well as eagerly.

`from garden_vision.ops import preprocess_ops` works as from Model Garden; the most used names
are also offered here (`garden_vision.ops.normalize_image`).

Detection ops (Model Garden's paths): `box_ops` (box formats, coding, IoU), `anchor`
(`Anchor`, `AnchorLabeler`), `iou_similarity`, `box_matcher`, `target_gather` and `nms`
(fixed-shape non-maximum suppression); for two-stage detectors `spatial_transform_ops`
(ROIAlign over feature levels, mask crops), `sampling_ops` (balanced positive / negative
sampling) and `mask_ops` (pasting instance masks into the image).

Everything is imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "AUTOAUGMENT_POLICIES": ".augment:AUTOAUGMENT_POLICIES",
        "Anchor": ".anchor:Anchor",
        "BalancedPositiveNegativeSampler": ".sampling_ops:BalancedPositiveNegativeSampler",
        "AnchorLabeler": ".anchor:AnchorLabeler",
        "AutoAugment": ".augment:AutoAugment",
        "BoxMatcher": ".box_matcher:BoxMatcher",
        "CENTER_CROP_FRACTION": ".preprocess_ops:CENTER_CROP_FRACTION",
        "IouSimilarity": ".iou_similarity:IouSimilarity",
        "MEAN_NORM": ".preprocess_ops:MEAN_NORM",
        "MEAN_RGB": ".preprocess_ops:MEAN_RGB",
        "MixupAndCutmix": ".augment:MixupAndCutmix",
        "RANDAUGMENT_OPS": ".augment:RANDAUGMENT_OPS",
        "RandAugment": ".augment:RandAugment",
        "RandomErasing": ".augment:RandomErasing",
        "STDDEV_NORM": ".preprocess_ops:STDDEV_NORM",
        "STDDEV_RGB": ".preprocess_ops:STDDEV_RGB",
        "TargetGather": ".target_gather:TargetGather",
        "apply_augmentation_op": ".augment:apply_augmentation_op",
        "build_anchor_generator": ".anchor:build_anchor_generator",
        "center_crop_image": ".preprocess_ops:center_crop_image",
        "clip_or_pad_to_fixed_size": ".preprocess_ops:clip_or_pad_to_fixed_size",
        "color_jitter": ".preprocess_ops:color_jitter",
        "compute_padded_size": ".preprocess_ops:compute_padded_size",
        "crop_mask_in_target_box": ".spatial_transform_ops:crop_mask_in_target_box",
        "decode_and_center_crop": ".preprocess_ops:decode_and_center_crop",
        "decode_and_random_crop": ".preprocess_ops:decode_and_random_crop",
        "horizontal_flip_boxes": ".preprocess_ops:horizontal_flip_boxes",
        "label_smoothing": ".preprocess_ops:label_smoothing",
        "multilevel_crop_and_resize": ".spatial_transform_ops:multilevel_crop_and_resize",
        "nearest_upsampling": ".spatial_transform_ops:nearest_upsampling",
        "normalize_image": ".preprocess_ops:normalize_image",
        "paste_instance_masks": ".mask_ops:paste_instance_masks",
        "paste_instance_masks_v2": ".mask_ops:paste_instance_masks_v2",
        "random_crop_image": ".preprocess_ops:random_crop_image",
        "random_horizontal_flip": ".preprocess_ops:random_horizontal_flip",
        "resize_and_crop_boxes": ".preprocess_ops:resize_and_crop_boxes",
        "resize_and_crop_image": ".preprocess_ops:resize_and_crop_image",
        "resize_and_crop_masks": ".preprocess_ops:resize_and_crop_masks",
        "resize_image_with_aspect_ratio": ".preprocess_ops:resize_image_with_aspect_ratio",
    },
)
