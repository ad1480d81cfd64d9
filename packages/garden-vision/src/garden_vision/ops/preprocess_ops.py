"""Image preprocessing for vision input pipelines (Model Garden's `ops.preprocess_ops`).

Decoding and cropping (`decode_and_random_crop`, `decode_and_center_crop`,
`random_crop_image`, `center_crop_image`), aspect-preserving resizing with padding
(`resize_and_crop_image`, `resize_image_with_aspect_ratio`, `compute_padded_size`) and the
matching transforms of detection labels (`resize_and_crop_boxes`, `resize_and_crop_masks`),
flips that keep boxes and masks consistent, padding of per-object tensors to a fixed count
(`clip_or_pad_to_fixed_size`), color jitter, normalization with ImageNet statistics, and label
smoothing.

All functions take `[height, width, channels]` images (the flips and normalization also take
batches) and are written with TensorFlow ops, so they trace into `tf.data` map functions and
also run eagerly. Boxes are normalized `[ymin, xmin, ymax, xmax]`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

from garden_vision.ops import augment

__all__ = [
    "CENTER_CROP_FRACTION",
    "MEAN_NORM",
    "MEAN_RGB",
    "STDDEV_NORM",
    "STDDEV_RGB",
    "center_crop_image",
    "clip_or_pad_to_fixed_size",
    "color_jitter",
    "compute_padded_size",
    "decode_and_center_crop",
    "decode_and_random_crop",
    "horizontal_flip_boxes",
    "label_smoothing",
    "normalize_image",
    "random_crop_image",
    "random_horizontal_flip",
    "resize_and_crop_boxes",
    "resize_and_crop_image",
    "resize_and_crop_masks",
    "resize_image_with_aspect_ratio",
]

# The side of the evaluation center crop relative to the short side (224 / 256).
CENTER_CROP_FRACTION = 0.875

# ImageNet training-set channel statistics, for images in [0, 1] ...
MEAN_NORM = (0.485, 0.456, 0.406)
STDDEV_NORM = (0.229, 0.224, 0.225)
# ... and for images in [0, 255], the units Model Garden's classifiers normalize in.
MEAN_RGB = tuple(255.0 * value for value in MEAN_NORM)
STDDEV_RGB = tuple(255.0 * value for value in STDDEV_NORM)

ImageSize = int | Sequence[int]


def _pair(size: ImageSize) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def normalize_image(
    image: tf.Tensor,
    offset: Sequence[float] = MEAN_RGB,
    scale: Sequence[float] = STDDEV_RGB,
) -> tf.Tensor:
    """Returns `(image - offset) / scale` per channel, as a float image.

    The image is not rescaled first: with the default ImageNet statistics in 0-255 units it
    should hold values in [0, 255] (a uint8 image, or a float one in that range). Integer
    images become float32; float images keep their dtype.

    Args:
      image: `[..., height, width, channels]`.
      offset: The per-channel mean to subtract.
      scale: The per-channel standard deviation to divide by.
    """
    with tf.name_scope("normalize_image"):
        image = tf.convert_to_tensor(image)
        if not image.dtype.is_floating:
            image = tf.cast(image, tf.float32)
        offset = tf.constant(offset, dtype=image.dtype)
        scale = tf.constant(scale, dtype=image.dtype)
        channels = image.shape[-1] if image.shape.rank else None
        if channels is None or image.shape.rank < 2 or channels != offset.shape[0]:
            return (image - offset) / scale
        # Broadcasting a `[channels]` vector over `[..., width, channels]` runs an inner loop
        # of `channels` values per pixel, several times slower than the same arithmetic on
        # rows: each row `[..., width * channels]` meets the statistics tiled `width` times
        # (the same values, so the same result to the bit).
        shape = tf.shape(image)
        width = shape[-2]
        rows = tf.reshape(image, tf.concat([shape[:-2], [-1]], axis=0))
        rows = (rows - tf.tile(offset, [width])) / tf.tile(scale, [width])
        rows = tf.reshape(rows, shape)
        rows.set_shape(image.shape)
        return rows


def _sample_crop(
    image_shape: tf.Tensor,
    aspect_ratio_range: Sequence[float],
    area_range: Sequence[float],
    max_attempts: int,
    seed: int | None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Samples an Inception-style crop; returns its `[y, x]` offset and `[height, width]`."""
    offset, size, _ = tf.image.sample_distorted_bounding_box(
        image_shape,
        tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed or 0,
        min_object_covered=area_range[0],
        aspect_ratio_range=list(aspect_ratio_range),
        area_range=list(area_range),
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    return offset[:2], size[:2]


def random_crop_image(
    image: tf.Tensor,
    aspect_ratio_range: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
    area_range: Sequence[float] = (0.08, 1.0),
    max_attempts: int = 10,
    seed: int | None = None,
) -> tf.Tensor:
    """Crops a random region, Inception style (`tf.image.sample_distorted_bounding_box`).

    The crop covers a fraction of the image in `area_range` and has a width / height ratio in
    `aspect_ratio_range`; after `max_attempts` failed draws it is the whole image.

    Args:
      image: `[height, width, channels]`.
      aspect_ratio_range: The range of the crop's width / height.
      area_range: The range of the crop's area as a fraction of the image.
      max_attempts: Draws before falling back to the whole image.
      seed: Op seed; None for a random one.
    """
    with tf.name_scope("random_crop_image"):
        offset, size = _sample_crop(
            tf.shape(image), aspect_ratio_range, area_range, max_attempts, seed
        )
        return tf.slice(image, tf.concat([offset, [0]], 0), tf.concat([size, [-1]], 0))


def center_crop_image(
    image: tf.Tensor, center_crop_fraction: float = CENTER_CROP_FRACTION
) -> tf.Tensor:
    """Crops the central square whose side is `center_crop_fraction` of the short side.

    Args:
      image: `[height, width, channels]`.
      center_crop_fraction: Crop side over the image's short side (224 / 256 by default).
    """
    with tf.name_scope("center_crop_image"):
        offset, size = _center_crop_window(tf.shape(image)[:2], center_crop_fraction)
        return image[offset[0] : offset[0] + size, offset[1] : offset[1] + size, :]


def _center_crop_window(
    image_size: tf.Tensor, center_crop_fraction: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns the `[y, x]` offset and the side of the central square crop."""
    image_size = tf.cast(image_size, tf.float32)
    side = center_crop_fraction * tf.reduce_min(image_size)
    offset = tf.cast((image_size - side) / 2.0, tf.int32)
    return offset, tf.cast(side, tf.int32)


def _decode_window(image_bytes: tf.Tensor, window_fn, jpeg_only: bool = False) -> tf.Tensor:
    """Decodes the `window_fn(shape) -> (offset, size)` window of an encoded RGB image.

    JPEG bytes are cropped before the full decode (`tf.image.decode_and_crop_jpeg`); other
    formats (PNG, BMP, GIF's first frame) are decoded whole and then sliced. With
    `jpeg_only`, the bytes are taken to be JPEG and the format check (a `tf.cond` per image)
    is skipped.
    """

    def jpeg() -> tf.Tensor:
        offset, size = window_fn(tf.image.extract_jpeg_shape(image_bytes))
        return tf.image.decode_and_crop_jpeg(image_bytes, tf.concat([offset, size], 0), channels=3)

    def other() -> tf.Tensor:
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        offset, size = window_fn(tf.shape(image))
        return tf.slice(image, tf.concat([offset, [0]], 0), tf.concat([size, [3]], 0))

    image = jpeg() if jpeg_only else tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
    image.set_shape([None, None, 3])
    return image


def _maybe_resize(image: tf.Tensor, image_size: ImageSize | None, method: str) -> tf.Tensor:
    if image_size is None:
        return image
    height, width = _pair(image_size)
    resized = tf.image.resize(image, [height, width], method=method)
    resized.set_shape([height, width, 3])
    return resized


def decode_and_random_crop(
    image_bytes: tf.Tensor,
    image_size: ImageSize | None = None,
    aspect_ratio_range: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
    area_range: Sequence[float] = (0.08, 1.0),
    max_attempts: int = 10,
    seed: int | None = None,
    method: str = tf.image.ResizeMethod.BILINEAR,
    jpeg_only: bool = False,
) -> tf.Tensor:
    """Decodes an Inception-style random crop of an encoded image, optionally resized.

    See `random_crop_image` for the crop. JPEG bytes are decoded only inside the crop.

    Args:
      image_bytes: A scalar string tensor holding a JPEG, PNG, BMP or GIF.
      image_size: If set, the crop is resized to this `(height, width)` (or square side).
      aspect_ratio_range: The range of the crop's width / height.
      area_range: The range of the crop's area as a fraction of the image.
      max_attempts: Draws before falling back to the whole image.
      seed: Op seed; None for a random one.
      method: The `tf.image.resize` method.
      jpeg_only: The bytes are JPEG: skip the per-image format check.

    Returns:
      A uint8 `[crop_height, crop_width, 3]` image, or a float32 `[height, width, 3]` one when
      `image_size` is set.
    """
    with tf.name_scope("decode_and_random_crop"):
        image = _decode_window(
            image_bytes,
            lambda shape: _sample_crop(shape, aspect_ratio_range, area_range, max_attempts, seed),
            jpeg_only=jpeg_only,
        )
        return _maybe_resize(image, image_size, method)


def decode_and_center_crop(
    image_bytes: tf.Tensor,
    image_size: ImageSize | None,
    center_crop_fraction: float = CENTER_CROP_FRACTION,
    method: str = tf.image.ResizeMethod.BILINEAR,
) -> tf.Tensor:
    """Decodes the central square crop of an encoded image and resizes it to `image_size`.

    See `center_crop_image` for the crop. JPEG bytes are decoded only inside the crop.

    Args:
      image_bytes: A scalar string tensor holding a JPEG, PNG, BMP or GIF.
      image_size: The output `(height, width)` (or square side); None keeps the crop's size.
      center_crop_fraction: Crop side over the image's short side.
      method: The `tf.image.resize` method.

    Returns:
      A float32 `[height, width, 3]` image, or the uint8 crop when `image_size` is None.
    """
    with tf.name_scope("decode_and_center_crop"):

        def window(shape: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            offset, side = _center_crop_window(shape[:2], center_crop_fraction)
            return offset, tf.stack([side, side])

        image = _decode_window(image_bytes, window)
        return _maybe_resize(image, image_size, method)


def resize_and_crop_image(
    image: tf.Tensor,
    desired_size: ImageSize,
    padded_size: ImageSize,
    aug_scale_min: float = 1.0,
    aug_scale_max: float = 1.0,
    seed: int | None = None,
    method: str = tf.image.ResizeMethod.BILINEAR,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Resizes keeping the aspect ratio, optionally jitters the scale, crops and pads.

    RetinaNet-style: the image is scaled to the largest size that fits in `desired_size`
    (times a random factor in `[aug_scale_min, aug_scale_max]` when jittering). With jitter,
    a random `desired_size` window of the scaled image is kept. The result is padded with
    zeros at the bottom and right to `padded_size`.

    Args:
      image: `[height, width, channels]`.
      desired_size: `(height, width)` (or a square side) the scaled image must fit in.
      padded_size: `(height, width)` of the output, at least `desired_size`.
      aug_scale_min: Smallest random scale factor (1 for no jitter).
      aug_scale_max: Largest random scale factor (1 for no jitter).
      seed: Op seed of the jitter; None for a random one.
      method: The `tf.image.resize` method.

    Returns:
      The float32 `[padded_height, padded_width, channels]` image and a float32 `[4, 2]`
      image_info: `[[original_height, original_width], [desired_height, desired_width],
      [y_scale, x_scale], [y_offset, x_offset]]`, the scales being scaled over original
      size and the offsets those of the kept window in the scaled image.
    """
    desired_size = _pair(desired_size)
    padded_size = _pair(padded_size)
    with tf.name_scope("resize_and_crop_image"):
        image_size = tf.cast(tf.shape(image)[:2], tf.float32)
        desired = tf.constant(desired_size, tf.float32)
        jitter = not (math.isclose(aug_scale_min, 1.0) and math.isclose(aug_scale_max, 1.0))
        if jitter:
            random_scale = tf.random.uniform([], aug_scale_min, aug_scale_max, seed=seed)
            target = tf.round(random_scale * desired)
        else:
            target = desired
        scale = tf.reduce_min(target / image_size)
        scaled_size = tf.round(image_size * scale)
        image_scale = scaled_size / image_size
        scaled = tf.image.resize(image, tf.cast(scaled_size, tf.int32), method=method)
        if jitter:
            max_offset = tf.maximum(scaled_size - desired, 0.0)
            offset = tf.cast(max_offset * tf.random.uniform([2], 0, 1, seed=seed), tf.int32)
            scaled = scaled[
                offset[0] : offset[0] + desired_size[0],
                offset[1] : offset[1] + desired_size[1],
                :,
            ]
        else:
            offset = tf.zeros([2], tf.int32)
        output = tf.image.pad_to_bounding_box(scaled, 0, 0, padded_size[0], padded_size[1])
        image_info = tf.stack([image_size, desired, image_scale, tf.cast(offset, tf.float32)])
        return output, image_info


def resize_image_with_aspect_ratio(
    image: tf.Tensor,
    target_size: ImageSize,
    method: str = tf.image.ResizeMethod.BILINEAR,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Scales the image to fit in `target_size` keeping its aspect ratio, then zero-pads.

    `resize_and_crop_image(image, target_size, target_size, method=method)` without jitter:
    the long side (relative to the target) meets the target and the other side is padded at
    the bottom or right.

    Args:
      image: `[height, width, channels]`.
      target_size: `(height, width)` of the output, or a square side.
      method: The `tf.image.resize` method.

    Returns:
      The float32 `[target_height, target_width, channels]` image and its `[4, 2]`
      image_info (see `resize_and_crop_image`).
    """
    return resize_and_crop_image(image, target_size, target_size, method=method)


def compute_padded_size(desired_size: ImageSize | tf.Tensor, stride: int) -> list[int] | tf.Tensor:
    """Rounds each side of `desired_size` up to a multiple of `stride`.

    Feature pyramids need every level to be exactly half the one below, so detection inputs
    are padded to a multiple of `2 ** max_level`: `(100, 200)` with stride 32 gives
    `[128, 224]`.

    Args:
      desired_size: `(height, width)` as Python ints (or a square side), or an int tensor.
      stride: The largest feature stride.

    Returns:
      A Python `[height, width]` list for Python input, else an int32 tensor.
    """
    if isinstance(desired_size, tf.Tensor):
        size = tf.cast(desired_size, tf.float32)
        return tf.cast(tf.math.ceil(size / stride) * stride, tf.int32)
    return [int(math.ceil(side / stride) * stride) for side in _pair(desired_size)]


def resize_and_crop_boxes(
    boxes: tf.Tensor,
    image_scale: tf.Tensor,
    output_size: ImageSize | tf.Tensor,
    offset: tf.Tensor,
) -> tf.Tensor:
    """Maps pixel boxes through `resize_and_crop_image`: scale, shift by the crop, clip.

    Args:
      boxes: `[..., 4]` `[ymin, xmin, ymax, xmax]` in pixels of the original image.
      image_scale: `[y_scale, x_scale]` (row 2 of `image_info`).
      output_size: `(height, width)` the boxes are clipped to (row 1 of `image_info`).
      offset: `[y_offset, x_offset]` of the kept window (row 3 of `image_info`).

    Returns:
      float32 boxes of the same shape in pixels of the output image; boxes outside the kept
      window collapse to zero height or width.
    """
    with tf.name_scope("resize_and_crop_boxes"):
        boxes = tf.cast(boxes, tf.float32)
        scale = tf.tile(tf.cast(image_scale, tf.float32), [2])
        shift = tf.tile(tf.cast(offset, tf.float32), [2])
        if isinstance(output_size, tf.Tensor):
            size = tf.cast(output_size, tf.float32)
        else:
            size = tf.constant(_pair(output_size), tf.float32)
        moved = boxes * scale - shift
        return tf.clip_by_value(moved, 0.0, tf.tile(size, [2]))


def resize_and_crop_masks(
    masks: tf.Tensor,
    image_scale: tf.Tensor,
    output_size: ImageSize | tf.Tensor,
    offset: tf.Tensor,
) -> tf.Tensor:
    """Maps instance masks through `resize_and_crop_image` (nearest-neighbour resizing).

    The masks are scaled by `image_scale`, the `output_size` window at `offset` is kept, and
    the result is zero-padded at the bottom and right to `output_size`. Zero masks work.

    Args:
      masks: `[num_masks, height, width, channels]` at the original image's size.
      image_scale: `[y_scale, x_scale]` (row 2 of `image_info`).
      output_size: `(height, width)` of the output masks.
      offset: `[y_offset, x_offset]` of the kept window (row 3 of `image_info`).

    Returns:
      `[num_masks, output_height, output_width, channels]` masks, in the input dtype.
    """
    with tf.name_scope("resize_and_crop_masks"):
        if isinstance(output_size, tf.Tensor):
            out_h, out_w = output_size[0], output_size[1]
            out_h, out_w = tf.cast(out_h, tf.int32), tf.cast(out_w, tf.int32)
        else:
            out_h, out_w = _pair(output_size)
        mask_size = tf.cast(tf.shape(masks)[1:3], tf.float32)
        scaled_size = tf.cast(tf.round(tf.cast(image_scale, tf.float32) * mask_size), tf.int32)
        offset = tf.cast(offset, tf.int32)

        def transform() -> tf.Tensor:
            scaled = tf.image.resize(
                masks, scaled_size, method=tf.image.ResizeMethod.NEAREST_NEIGHBOR
            )
            window = scaled[:, offset[0] : offset[0] + out_h, offset[1] : offset[1] + out_w, :]
            return tf.cast(tf.image.pad_to_bounding_box(window, 0, 0, out_h, out_w), masks.dtype)

        def empty() -> tf.Tensor:
            return tf.zeros(tf.stack([0, out_h, out_w, tf.shape(masks)[3]]), masks.dtype)

        output = tf.cond(tf.shape(masks)[0] > 0, transform, empty)
        if not isinstance(out_h, tf.Tensor):
            output.set_shape([None, out_h, out_w, masks.shape[-1]])
        return output


def clip_or_pad_to_fixed_size(
    input_tensor: tf.Tensor, size: int, constant_values: int | float = 0
) -> tf.Tensor:
    """Truncates or pads the first dimension of `input_tensor` to `size`.

    Args:
      input_tensor: `[length, ...]`.
      size: The first dimension of the result.
      constant_values: The value of padding rows.

    Returns:
      `[size, ...]`, the first `min(length, size)` rows followed by padding; the static
      shape is set.
    """
    input_tensor = tf.convert_to_tensor(input_tensor)
    kept = input_tensor[:size]
    padding = [[0, size - tf.shape(kept)[0]]] + [[0, 0]] * (input_tensor.shape.rank - 1)
    padded = tf.pad(kept, padding, constant_values=tf.cast(constant_values, kept.dtype))
    padded.set_shape([size, *input_tensor.shape[1:]])
    return padded


def horizontal_flip_boxes(normalized_boxes: tf.Tensor) -> tf.Tensor:
    """Mirrors normalized `[..., 4]` `[ymin, xmin, ymax, xmax]` boxes left to right."""
    ymin, xmin, ymax, xmax = tf.unstack(normalized_boxes, axis=-1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1)


def random_horizontal_flip(
    image: tf.Tensor,
    normalized_boxes: tf.Tensor | None = None,
    masks: tf.Tensor | None = None,
    seed: int | None = None,
    prob: float = 0.5,
) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
    """Flips an image, and its boxes and masks with it, left to right with probability `prob`.

    Args:
      image: `[height, width, channels]` (or a batch, flipped as a whole).
      normalized_boxes: Optional `[num_boxes, 4]` normalized `[ymin, xmin, ymax, xmax]`.
      masks: Optional `[num_masks, height, width]` (or `[num_masks, height, width, 1]`).
      seed: Op seed; None for a random one.
      prob: Probability of flipping.

    Returns:
      `(image, normalized_boxes, masks)`; the last two are None when not given.
    """
    with tf.name_scope("random_horizontal_flip"):
        flip = tf.random.uniform([], seed=seed) < prob
        image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: tf.identity(image))
        if normalized_boxes is not None:
            boxes = normalized_boxes
            normalized_boxes = tf.cond(
                flip, lambda: horizontal_flip_boxes(boxes), lambda: tf.identity(boxes)
            )
        if masks is not None:
            original = masks
            masks = tf.cond(flip, lambda: tf.reverse(original, [2]), lambda: tf.identity(original))
        return image, normalized_boxes, masks


def _random_factor(magnitude: float, seed: int | None) -> tf.Tensor:
    """A factor uniform in `[max(0, 1 - magnitude), 1 + magnitude]`."""
    return tf.random.uniform([], max(0.0, 1.0 - magnitude), 1.0 + magnitude, seed=seed)


def color_jitter(
    image: tf.Tensor,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    seed: int | None = None,
    random_order: bool = False,
) -> tf.Tensor:
    """Jitters brightness, contrast and saturation, like torchvision's `ColorJitter`.

    Each enabled adjustment blends with a degenerate image (black, the mean gray level, the
    grayscale image) by a factor uniform in `[max(0, 1 - m), 1 + m]`. Model Garden applies them
    in the fixed order brightness, contrast, saturation (the default); with `random_order`
    they are shuffled per image, as torchvision does.

    Args:
      image: uint8 `[height, width, 3]`; other dtypes are clipped to [0, 255] and
        converted, and the result is cast back.
      brightness: Brightness magnitude m (>= 0; 0 disables it).
      contrast: Contrast magnitude m (>= 0; 0 disables it).
      saturation: Saturation magnitude m (>= 0; 0 disables it).
      seed: Op seed; None for random ones.
      random_order: Apply the enabled adjustments in a random order.

    Raises:
      ValueError: If a magnitude is negative.
    """
    magnitudes = {"brightness": brightness, "contrast": contrast, "saturation": saturation}
    for name, value in magnitudes.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    ops = {
        "brightness": augment.brightness,
        "contrast": augment.contrast,
        "saturation": augment.color,
    }
    adjustments = []
    for index, (name, value) in enumerate(magnitudes.items()):
        if value > 0:
            op_seed = None if seed is None else seed + index
            adjustments.append((ops[name], value, op_seed))

    input_dtype = image.dtype
    with tf.name_scope("color_jitter"):
        if input_dtype != tf.uint8:
            image = tf.cast(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0), tf.uint8)
        if random_order and len(adjustments) > 1:
            order = tf.random.shuffle(tf.range(len(adjustments)), seed=seed)
            for position in range(len(adjustments)):
                branches = [
                    lambda op=op, m=m, s=s, img=image: op(img, _random_factor(m, s))
                    for op, m, s in adjustments
                ]
                shape = image.shape
                image = tf.switch_case(order[position], branches)
                image.set_shape(shape)
        else:
            for op, m, s in adjustments:
                image = op(image, _random_factor(m, s))
        return tf.cast(image, input_dtype)


def label_smoothing(one_hot_labels: tf.Tensor, smoothing: float) -> tf.Tensor:
    """Returns `one_hot * (1 - smoothing) + smoothing / num_classes`.

    Args:
      one_hot_labels: Float `[..., num_classes]` one-hot (or soft) labels.
      smoothing: The probability mass spread uniformly over all classes, in [0, 1].
    """
    labels = tf.convert_to_tensor(one_hot_labels)
    if not labels.dtype.is_floating:
        labels = tf.cast(labels, tf.float32)
    num_classes = tf.cast(tf.shape(labels)[-1], labels.dtype)
    return labels * (1.0 - smoothing) + smoothing / num_classes
