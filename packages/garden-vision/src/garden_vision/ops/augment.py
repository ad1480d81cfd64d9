"""Training-time image augmentation that runs inside `tf.data` (Model Garden's `ops.augment`).

- `RandAugment` (Cubuk et al., 2019, https://arxiv.org/abs/1909.13719): `num_layers` ops drawn
  uniformly from Model Garden's 16 (or the identity), all at one magnitude.
- `AutoAugment` (Cubuk et al., 2018, https://arxiv.org/abs/1805.09501): one sub-policy drawn
  from a published policy table (`AUTOAUGMENT_POLICIES`), each of its ops applied with its own
  probability and magnitude. `distort_with_boxes(image, bboxes)` runs the object-detection
  policy `detection_v0` of `DETECTION_AUTOAUGMENT_POLICIES` (Zoph et al., 2019,
  https://arxiv.org/abs/1906.11172), whose box-aware ops (`rotate_with_bboxes`,
  `shear_with_bboxes`, `translate_bbox`, `translate_y_only_bboxes`) move normalized
  `[ymin, xmin, ymax, xmax]` boxes with the pixels.
- `RandomErasing` (Zhong et al., 2017, https://arxiv.org/abs/1708.04896): rectangles of a
  float image replaced by Gaussian noise.
- `MixupAndCutmix` (Zhang et al., 2017, https://arxiv.org/abs/1710.09412; Yun et al., 2019,
  https://arxiv.org/abs/1905.04899): mixes a batch with its reverse and softens the labels.

The photometric and geometric ops work on uint8 `[height, width, 3]` images, follow PIL's
definitions the way Model Garden does and are exposed one by one (`autocontrast`, `equalize`,
`rotate`, ...) and through `apply_augmentation_op(image, op_name, level)`, which maps a level
in [0, 10] to each op's argument with Model Garden's rules. Geometric ops use
`tf.raw_ops.ImageProjectiveTransformV3` with nearest-neighbour sampling; pixels that come from
outside the image get the `replace` color (gray, 128, by default).

Everything is written with TensorFlow ops so it traces into `tf.data` map functions and also
runs eagerly. Where Model Garden's code departs from its own docstrings or from the papers,
this module follows the documented behaviour:

- `contrast` blends towards the mean gray level (as PIL does), not towards
  `num_pixels / 256`;
- geometric ops fill uncovered pixels with `replace` (Model Garden's Keras `transform`
  defaults to reflection, so its `replace` value never shows);
- `magnitude_std` scales the Gaussian noise added to the level (Model Garden adds unit noise
  whatever the value);
- Mixup and CutMix draw lambda from Beta(alpha, alpha) as `Gamma(alpha, 1)` ratios (Model
  Garden's `Gamma(1, rate=alpha)` ratio is Beta(1, 1), the uniform distribution), CutMix's box
  uses the image width for its width, and lambda is recomputed from the clipped box;
- box-aware ops move boxes exactly with the pixel transform (in float, not rounded to whole
  pixels), and a box moved out of the image keeps no area instead of being widened to a
  0.05-wide sliver at the border.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import tensorflow as tf

# The largest level of a policy op; levels in the tables are in [0, _MAX_LEVEL].
_MAX_LEVEL = 10.0
# Fill color of pixels uncovered by geometric ops and of cutout.
_REPLACE = (128, 128, 128)

# (op name, probability, level): one op of an AutoAugment sub-policy.
PolicyOp = tuple[str, float, float]

__all__ = [
    "AUTOAUGMENT_POLICIES",
    "DETECTION_AUTOAUGMENT_POLICIES",
    "RANDAUGMENT_OPS",
    "AutoAugment",
    "MixupAndCutmix",
    "RandAugment",
    "RandomErasing",
    "apply_augmentation_op",
    "apply_augmentation_op_with_boxes",
    "autocontrast",
    "blend",
    "brightness",
    "color",
    "contrast",
    "cutout",
    "equalize",
    "gaussian_blur",
    "grayscale",
    "invert",
    "posterize",
    "rotate",
    "rotate_with_bboxes",
    "sharpness",
    "shear_x",
    "shear_with_bboxes",
    "shear_y",
    "solarize",
    "solarize_add",
    "translate_bbox",
    "translate_x",
    "translate_y",
    "translate_y_only_bboxes",
]


# --------------------------------------------------------------------------------------------
# Photometric ops (uint8 images).
# --------------------------------------------------------------------------------------------


def blend(image1: tf.Tensor, image2: tf.Tensor, factor: float | tf.Tensor) -> tf.Tensor:
    """Returns `image1 + factor * (image2 - image1)` clipped to [0, 255] as uint8.

    A factor of 0 gives `image1`, 1 gives `image2`; factors above 1 extrapolate away from
    `image1` (PIL's `ImageEnhance` semantics).

    Args:
      image1: The degenerate image (any numeric dtype, values in [0, 255]).
      image2: The original image, same shape as `image1` or broadcastable to it.
      factor: A non-negative float, Python or scalar tensor.
    """
    factor = tf.cast(factor, tf.float32)
    base = tf.cast(image1, tf.float32)
    blended = base + factor * (tf.cast(image2, tf.float32) - base)
    return tf.cast(tf.clip_by_value(blended, 0.0, 255.0), tf.uint8)


def grayscale(image: tf.Tensor) -> tf.Tensor:
    """Returns the image's luma repeated over three channels (uint8)."""
    return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))


def color(image: tf.Tensor, factor: float | tf.Tensor) -> tf.Tensor:
    """PIL's `ImageEnhance.Color`: blends the image with its grayscale version."""
    return blend(grayscale(image), image, factor)


def contrast(image: tf.Tensor, factor: float | tf.Tensor) -> tf.Tensor:
    """PIL's `ImageEnhance.Contrast`: blends the image with its mean gray level."""
    gray = tf.cast(tf.image.rgb_to_grayscale(image), tf.float32)
    mean = tf.round(tf.reduce_mean(gray, axis=[-3, -2, -1], keepdims=True))
    return blend(tf.ones_like(image, dtype=tf.float32) * mean, image, factor)


def brightness(image: tf.Tensor, factor: float | tf.Tensor) -> tf.Tensor:
    """PIL's `ImageEnhance.Brightness`: blends the image with black."""
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image: tf.Tensor, factor: float | tf.Tensor) -> tf.Tensor:
    """PIL's `ImageEnhance.Sharpness`: blends with PIL's SMOOTH filter (borders kept).

    Args:
      image: uint8 `[height, width, channels]`, at least 3x3.
      factor: 0 gives the smoothed image, 1 the original, above 1 sharpens.
    """
    channels = image.shape[-1] if image.shape[-1] is not None else 3
    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    smoothed = tf.nn.depthwise_conv2d(
        tf.cast(image, tf.float32)[None], kernel, strides=[1, 1, 1, 1], padding="VALID"
    )[0]
    smoothed = tf.cast(tf.clip_by_value(tf.round(smoothed), 0.0, 255.0), tf.uint8)
    # PIL leaves the one-pixel border untouched.
    paddings = [[1, 1], [1, 1], [0, 0]]
    interior = tf.pad(tf.ones_like(smoothed, dtype=tf.bool), paddings, constant_values=False)
    degenerate = tf.where(interior, tf.pad(smoothed, paddings), image)
    return blend(degenerate, image, factor)


def posterize(image: tf.Tensor, bits: int | tf.Tensor) -> tf.Tensor:
    """PIL's `ImageOps.posterize`: keeps the `bits` most significant bits of each value."""
    shift = tf.clip_by_value(8 - tf.cast(bits, tf.int32), 0, 8)
    step = tf.bitwise.left_shift(tf.constant(1, tf.int32), shift)
    return tf.cast((tf.cast(image, tf.int32) // step) * step, tf.uint8)


def solarize(image: tf.Tensor, threshold: int | tf.Tensor = 128) -> tf.Tensor:
    """PIL's `ImageOps.solarize`: inverts every value at or above `threshold`."""
    values = tf.cast(image, tf.int32)
    return tf.where(values < tf.cast(threshold, tf.int32), image, 255 - image)


def solarize_add(
    image: tf.Tensor, addition: int | tf.Tensor = 0, threshold: int | tf.Tensor = 128
) -> tf.Tensor:
    """Adds `addition` (clipped to [0, 255]) to every value below `threshold`."""
    values = tf.cast(image, tf.int32)
    added = tf.cast(tf.clip_by_value(values + tf.cast(addition, tf.int32), 0, 255), tf.uint8)
    return tf.where(values < tf.cast(threshold, tf.int32), added, image)


def invert(image: tf.Tensor) -> tf.Tensor:
    """PIL's `ImageOps.invert`: `255 - image`."""
    return 255 - tf.convert_to_tensor(image)


def autocontrast(image: tf.Tensor) -> tf.Tensor:
    """PIL's `ImageOps.autocontrast`: stretches each channel to span [0, 255].

    Channels with a single value are left as they are.
    """
    values = tf.cast(image, tf.float32)
    low = tf.reduce_min(values, axis=[-3, -2], keepdims=True)
    high = tf.reduce_max(values, axis=[-3, -2], keepdims=True)
    scale = 255.0 / tf.maximum(high - low, 1.0)
    stretched = tf.clip_by_value((values - low) * scale, 0.0, 255.0)
    return tf.cast(tf.where(high > low, stretched, values), tf.uint8)


def _equalize_channel(channel: tf.Tensor) -> tf.Tensor:
    """Histogram-equalizes one int32 `[height, width]` channel with PIL's rule."""
    histogram = tf.math.bincount(channel, minlength=256, maxlength=256, dtype=tf.int32)
    last_used = tf.reduce_max(tf.where(histogram > 0)[:, 0])
    step = (tf.reduce_sum(histogram) - tf.gather(histogram, last_used)) // 255
    safe_step = tf.maximum(step, 1)
    lut = (tf.cumsum(histogram) + safe_step // 2) // safe_step
    lut = tf.clip_by_value(tf.concat([[0], lut[:-1]], axis=0), 0, 255)
    return tf.where(step > 0, tf.gather(lut, channel), channel)


def equalize(image: tf.Tensor) -> tf.Tensor:
    """PIL's `ImageOps.equalize` on each channel of a uint8 `[height, width, 3]` image."""
    values = tf.cast(image, tf.int32)
    channels = [_equalize_channel(values[..., c]) for c in range(3)]
    return tf.cast(tf.stack(channels, axis=-1), tf.uint8)


def gaussian_blur(image: tf.Tensor, low: float | tf.Tensor, high: float | tf.Tensor) -> tf.Tensor:
    """3x3 Gaussian blur with a standard deviation drawn from U(low, high).

    This is Model Garden's `Gaussian_Noise` op (a `gaussian_filter2d` with its default 3x3
    filter and reflected borders), used by the `deit3_three_augment` policy.
    """
    sigma = tf.random.uniform([], tf.cast(low, tf.float32), tf.cast(high, tf.float32))
    sigma = tf.maximum(sigma, 1e-3)
    taps = tf.exp(-tf.constant([1.0, 0.0, 1.0]) / (2.0 * tf.square(sigma)))
    taps /= tf.reduce_sum(taps)
    channels = image.shape[-1] if image.shape[-1] is not None else 3
    kernel = tf.tile((taps[:, None] * taps[None, :])[:, :, None, None], [1, 1, channels, 1])
    padded = tf.pad(tf.cast(image, tf.float32), [[1, 1], [1, 1], [0, 0]], mode="REFLECT")
    blurred = tf.nn.depthwise_conv2d(padded[None], kernel, [1, 1, 1, 1], padding="VALID")[0]
    return tf.cast(tf.clip_by_value(tf.round(blurred), 0.0, 255.0), tf.uint8)


# --------------------------------------------------------------------------------------------
# Geometric ops (uint8 images).
# --------------------------------------------------------------------------------------------


def _fill_color(replace: Sequence[int] | tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    return tf.reshape(tf.cast(replace, dtype), [1, 1, -1])


def _projective_transform(
    image: tf.Tensor, transform: Sequence[Any], replace: Sequence[int] | tf.Tensor
) -> tf.Tensor:
    """Resamples `image` at `transform(output point)`; uncovered pixels get `replace`.

    `transform` is `[a0, a1, a2, b0, b1, b2, c0, c1]`: the output pixel `(x, y)` reads the
    input at `((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)`, `k = c0 x + c1 y + 1`.
    """
    transform = tf.cast(tf.stack(transform), tf.float32)
    size = tf.shape(image)[:2]
    # An extra all-ones channel marks the pixels that were sampled from inside the image.
    marked = tf.concat([image, tf.ones_like(image[..., :1])], axis=-1)
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=marked[None],
        transforms=transform[None],
        output_shape=size,
        fill_value=tf.constant(0.0),
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )[0]
    inside = moved[..., -1:] > 0
    out = tf.where(inside, moved[..., :-1], _fill_color(replace, image.dtype))
    out.set_shape(image.shape)
    return out


def rotate(
    image: tf.Tensor, degrees: float | tf.Tensor, replace: Sequence[int] | tf.Tensor = _REPLACE
) -> tf.Tensor:
    """Rotates the image about its center by `degrees` (counterclockwise when positive)."""
    radians = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    center_y, center_x = (size[0] - 1.0) / 2.0, (size[1] - 1.0) / 2.0
    cos, sin = tf.cos(radians), tf.sin(radians)
    transform = [
        cos,
        -sin,
        center_x - cos * center_x + sin * center_y,
        sin,
        cos,
        center_y - sin * center_x - cos * center_y,
        0.0,
        0.0,
    ]
    return _projective_transform(image, transform, replace)


def translate_x(
    image: tf.Tensor, pixels: float | tf.Tensor, replace: Sequence[int] | tf.Tensor = _REPLACE
) -> tf.Tensor:
    """PIL's horizontal translate: the content moves `pixels` to the left."""
    return _projective_transform(image, [1.0, 0.0, pixels, 0.0, 1.0, 0.0, 0.0, 0.0], replace)


def translate_y(
    image: tf.Tensor, pixels: float | tf.Tensor, replace: Sequence[int] | tf.Tensor = _REPLACE
) -> tf.Tensor:
    """PIL's vertical translate: the content moves `pixels` up."""
    return _projective_transform(image, [1.0, 0.0, 0.0, 0.0, 1.0, pixels, 0.0, 0.0], replace)


def shear_x(
    image: tf.Tensor, level: float | tf.Tensor, replace: Sequence[int] | tf.Tensor = _REPLACE
) -> tf.Tensor:
    """PIL's horizontal shear: output `(x, y)` reads input `(x + level * y, y)`."""
    return _projective_transform(image, [1.0, level, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], replace)


def shear_y(
    image: tf.Tensor, level: float | tf.Tensor, replace: Sequence[int] | tf.Tensor = _REPLACE
) -> tf.Tensor:
    """PIL's vertical shear: output `(x, y)` reads input `(x, level * x + y)`."""
    return _projective_transform(image, [1.0, 0.0, 0.0, level, 1.0, 0.0, 0.0, 0.0], replace)


def cutout(
    image: tf.Tensor, pad_size: int | tf.Tensor, replace: Sequence[int] | tf.Tensor = _REPLACE
) -> tf.Tensor:
    """Cutout (DeVries & Taylor, 2017): fills a `2 * pad_size` square at a random center.

    The center is uniform over the image; the square is clipped at the borders.
    """
    size = tf.shape(image)
    height, width = size[0], size[1]
    pad_size = tf.cast(pad_size, tf.int32)
    center_y = tf.random.uniform([], 0, height, dtype=tf.int32)
    center_x = tf.random.uniform([], 0, width, dtype=tf.int32)
    rows = tf.range(height)[:, None, None]
    cols = tf.range(width)[None, :, None]
    inside = (
        (rows >= center_y - pad_size)
        & (rows < center_y + pad_size)
        & (cols >= center_x - pad_size)
        & (cols < center_x + pad_size)
    )
    return tf.where(inside, _fill_color(replace, image.dtype), image)


# --------------------------------------------------------------------------------------------
# Box-aware geometric ops (uint8 images, normalized [ymin, xmin, ymax, xmax] boxes).
# --------------------------------------------------------------------------------------------


def _map_boxes(
    boxes: tf.Tensor, image_size: tf.Tensor, matrix: tf.Tensor, shift: tf.Tensor
) -> tf.Tensor:
    """Moves boxes with the forward map `out = matrix @ in + shift` of pixel indices.

    Pixel `i` covers `[i, i + 1)`, so a box edge `u` (in pixels) is index `u - 0.5`. The four
    corners of each box are mapped; the result is their bounding box, clipped to the image
    (a box moved out of the image keeps no area).
    """
    boxes = tf.cast(boxes, tf.float32)
    size = tf.cast(image_size, tf.float32)
    height, width = size[0], size[1]
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    xs = tf.stack([xmin, xmax, xmin, xmax], axis=-1) * width - 0.5
    ys = tf.stack([ymin, ymin, ymax, ymax], axis=-1) * height - 0.5
    new_x = matrix[0, 0] * xs + matrix[0, 1] * ys + shift[0] + 0.5
    new_y = matrix[1, 0] * xs + matrix[1, 1] * ys + shift[1] + 0.5
    moved = tf.stack(
        [
            tf.reduce_min(new_y, -1) / height,
            tf.reduce_min(new_x, -1) / width,
            tf.reduce_max(new_y, -1) / height,
            tf.reduce_max(new_x, -1) / width,
        ],
        axis=-1,
    )
    return tf.reshape(tf.clip_by_value(moved, 0.0, 1.0), tf.shape(boxes))


def rotate_with_bboxes(
    image: tf.Tensor,
    bboxes: tf.Tensor,
    degrees: float | tf.Tensor,
    replace: Sequence[int] | tf.Tensor = _REPLACE,
) -> tuple[tf.Tensor, tf.Tensor]:
    """`rotate`s the image; each box becomes the bounding box of its rotated corners.

    Args:
      image: uint8 `[height, width, 3]`.
      bboxes: `[num_boxes, 4]` normalized `[ymin, xmin, ymax, xmax]`.
      degrees: The rotation (see `rotate`).
      replace: The color of uncovered pixels.

    Returns:
      The rotated image and the moved boxes, clipped to the image.
    """
    size = tf.shape(image)[:2]
    radians = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(radians), tf.sin(radians)
    center = (tf.cast(tf.stack([size[1], size[0]]), tf.float32) - 1.0) / 2.0
    # `rotate` reads input `R (out - c) + c` with R = [[cos, -sin], [sin, cos]] in (x, y), so
    # a point moves forward by R's transpose.
    matrix = tf.stack([tf.stack([cos, sin]), tf.stack([-sin, cos])])
    shift = center - tf.linalg.matvec(matrix, center)
    return rotate(image, degrees, replace), _map_boxes(bboxes, size, matrix, shift)


def shear_with_bboxes(
    image: tf.Tensor,
    bboxes: tf.Tensor,
    level: float | tf.Tensor,
    replace: Sequence[int] | tf.Tensor = _REPLACE,
    shear_horizontal: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """`shear_x` (or `shear_y`) the image; boxes become the bounding boxes of their corners.

    Args:
      image: uint8 `[height, width, 3]`.
      bboxes: `[num_boxes, 4]` normalized `[ymin, xmin, ymax, xmax]`.
      level: The shear factor (see `shear_x`).
      replace: The color of uncovered pixels.
      shear_horizontal: Shear along x (True) or y (False).

    Returns:
      The sheared image and the moved boxes, clipped to the image.
    """
    level = tf.cast(level, tf.float32)
    # shear_x reads input (x + level * y, y): a point moves to (x - level * y, y).
    if shear_horizontal:
        matrix = tf.stack([tf.stack([1.0, -level]), tf.stack([0.0, 1.0])])
        sheared = shear_x(image, level, replace)
    else:
        matrix = tf.stack([tf.stack([1.0, 0.0]), tf.stack([-level, 1.0])])
        sheared = shear_y(image, level, replace)
    return sheared, _map_boxes(bboxes, tf.shape(image)[:2], matrix, tf.zeros([2]))


def translate_bbox(
    image: tf.Tensor,
    bboxes: tf.Tensor,
    pixels: float | tf.Tensor,
    replace: Sequence[int] | tf.Tensor = _REPLACE,
    shift_horizontal: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """`translate_x` (or `translate_y`) the image and its boxes by `pixels`.

    Args:
      image: uint8 `[height, width, 3]`.
      bboxes: `[num_boxes, 4]` normalized `[ymin, xmin, ymax, xmax]`.
      pixels: The content moves this many pixels left (or up); negative moves right (down).
      replace: The color of uncovered pixels.
      shift_horizontal: Translate along x (True) or y (False).

    Returns:
      The translated image and the moved boxes, clipped to the image.
    """
    pixels = tf.cast(pixels, tf.float32)
    if shift_horizontal:
        moved = translate_x(image, pixels, replace)
        shift = tf.stack([-pixels, 0.0])
    else:
        moved = translate_y(image, pixels, replace)
        shift = tf.stack([0.0, -pixels])
    return moved, _map_boxes(bboxes, tf.shape(image)[:2], tf.eye(2), shift)


def _box_region(box: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """The pixel rows `[top, bottom)` and columns `[left, right)` whose centers a box covers."""
    size = tf.cast(tf.stack([height, width, height, width]), tf.float32)
    first = tf.cast(tf.math.ceil(tf.clip_by_value(box, 0.0, 1.0) * size - 0.5), tf.int32)
    top = tf.minimum(first[0], height - 1)
    left = tf.minimum(first[1], width - 1)
    # At least one pixel, so that degenerate boxes still give a valid crop.
    bottom = tf.maximum(first[2], top + 1)
    right = tf.maximum(first[3], left + 1)
    return top, left, bottom, right


def translate_y_only_bboxes(
    image: tf.Tensor,
    bboxes: tf.Tensor,
    prob: float | tf.Tensor,
    pixels: float | tf.Tensor,
    replace: Sequence[int] | tf.Tensor = _REPLACE,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Moves the content inside boxes up by `pixels`, each box with probability `prob / 3`.

    The boxes themselves stay where they are (Zoph et al.'s "only bboxes" ops). Boxes are
    visited in random order, so overlaps do not always resolve the same way; the third of
    `prob` keeps crowded images from being distorted everywhere (Model Garden's rule).

    Args:
      image: uint8 `[height, width, 3]`.
      bboxes: `[num_boxes, 4]` normalized `[ymin, xmin, ymax, xmax]`.
      prob: The op's probability; each box is changed with a third of it.
      pixels: The shift of each box's content (see `translate_y`).
      replace: The color uncovered inside a box.

    Returns:
      The image and the unchanged boxes.
    """
    bboxes = tf.convert_to_tensor(bboxes, tf.float32)
    size = tf.shape(image)
    height, width = size[0], size[1]
    order = tf.random.shuffle(tf.range(tf.shape(bboxes)[0]))
    box_prob = tf.cast(prob, tf.float32) / 3.0

    def shift_box(index: tf.Tensor, current: tf.Tensor) -> tf.Tensor:
        top, left, bottom, right = _box_region(bboxes[order[index]], height, width)
        crop = current[top:bottom, left:right, :]
        moved = translate_y(crop, pixels, replace)
        paddings = [[top, height - bottom], [left, width - right], [0, 0]]
        inside = tf.pad(tf.ones_like(crop[..., :1], tf.bool), paddings, constant_values=False)
        return tf.where(inside, tf.pad(moved, paddings), current)

    def body(index: tf.Tensor, current: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        updated = tf.cond(
            tf.random.uniform([]) < box_prob,
            lambda: shift_box(index, current),
            lambda: tf.identity(current),
        )
        updated.set_shape(image.shape)
        return index + 1, updated

    _, image = tf.while_loop(
        lambda index, _: index < tf.shape(order)[0], body, [tf.constant(0), image]
    )
    return image, bboxes


# --------------------------------------------------------------------------------------------
# Levels to arguments and the op registry.
# --------------------------------------------------------------------------------------------


def _random_sign(value: tf.Tensor) -> tf.Tensor:
    """Returns `value` or `-value` with probability one half each."""
    return tf.where(tf.random.uniform([]) < 0.5, -value, value)


def _level_to_args(
    op_name: str, level: tf.Tensor, cutout_const: float, translate_const: float
) -> tuple[Any, ...]:
    """Model Garden's mapping from a level in [0, 10] to the arguments of each op."""
    fraction = level / _MAX_LEVEL
    if op_name in ("AutoContrast", "Equalize", "Invert", "Grayscale"):
        return ()
    if op_name in ("Rotate", "Rotate_BBox"):
        return (_random_sign(fraction * 30.0),)
    if op_name == "Posterize":
        return (tf.cast(fraction * 4.0, tf.int32),)
    if op_name == "Solarize":
        return (tf.cast(fraction * 256.0, tf.int32),)
    if op_name == "SolarizeAdd":
        return (tf.cast(fraction * 110.0, tf.int32),)
    if op_name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return (fraction * 1.8 + 0.1,)
    if op_name in ("ShearX", "ShearY", "ShearX_BBox", "ShearY_BBox"):
        return (_random_sign(fraction * 0.3),)
    if op_name in ("TranslateX", "TranslateY", "TranslateX_BBox", "TranslateY_BBox"):
        return (_random_sign(fraction * float(translate_const)),)
    if op_name == "TranslateY_Only_BBoxes":
        # Zoph et al.'s box-content shift reaches 120 pixels at level 10, whatever
        # translate_const is (as in Model Garden).
        return (_random_sign(fraction * 120.0),)
    if op_name == "Cutout":
        return (tf.cast(fraction * float(cutout_const), tf.int32),)
    if op_name == "Gaussian_Noise":
        return (fraction, float(translate_const) * fraction)
    raise ValueError(f"unknown augmentation op {op_name!r}; expected one of {_known_ops()}")


# Op name -> (function, whether it takes the `replace` color).
_OPS: dict[str, tuple[Callable[..., tf.Tensor], bool]] = {
    "AutoContrast": (autocontrast, False),
    "Equalize": (equalize, False),
    "Invert": (invert, False),
    "Rotate": (rotate, True),
    "Posterize": (posterize, False),
    "Solarize": (solarize, False),
    "SolarizeAdd": (solarize_add, False),
    "Color": (color, False),
    "Contrast": (contrast, False),
    "Brightness": (brightness, False),
    "Sharpness": (sharpness, False),
    "ShearX": (shear_x, True),
    "ShearY": (shear_y, True),
    "TranslateX": (translate_x, True),
    "TranslateY": (translate_y, True),
    "Cutout": (cutout, True),
    "Grayscale": (grayscale, False),
    "Gaussian_Noise": (gaussian_blur, False),
}

# The ops RandAugment draws from, in Model Garden's order.
RANDAUGMENT_OPS: tuple[str, ...] = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Cutout",
    "SolarizeAdd",
)


# Box-aware op name -> function(image, boxes, *args, replace) -> (image, boxes), for detection
# policies (Zoph et al., 2019, https://arxiv.org/abs/1906.11172). TranslateY_Only_BBoxes also
# takes the op's probability before its level argument.
_BOX_OPS: dict[str, Callable[..., tuple[tf.Tensor, tf.Tensor]]] = {
    "Rotate_BBox": rotate_with_bboxes,
    "ShearX_BBox": lambda image, boxes, level, replace: shear_with_bboxes(
        image, boxes, level, replace, shear_horizontal=True
    ),
    "ShearY_BBox": lambda image, boxes, level, replace: shear_with_bboxes(
        image, boxes, level, replace, shear_horizontal=False
    ),
    "TranslateX_BBox": lambda image, boxes, pixels, replace: translate_bbox(
        image, boxes, pixels, replace, shift_horizontal=True
    ),
    "TranslateY_BBox": lambda image, boxes, pixels, replace: translate_bbox(
        image, boxes, pixels, replace, shift_horizontal=False
    ),
    "TranslateY_Only_BBoxes": translate_y_only_bboxes,
}


def _known_ops() -> str:
    return ", ".join([*_OPS, *_BOX_OPS])


def apply_augmentation_op(
    image: tf.Tensor,
    op_name: str,
    level: float | tf.Tensor,
    *,
    cutout_const: float = 40.0,
    translate_const: float = 100.0,
    replace: Sequence[int] | tf.Tensor = _REPLACE,
) -> tf.Tensor:
    """Applies one named op at `level` (0-10) to a uint8 `[height, width, 3]` image.

    Args:
      image: The uint8 image.
      op_name: One of Model Garden's op names (`RANDAUGMENT_OPS`, plus `Grayscale` and
        `Gaussian_Noise`).
      level: The magnitude; 10 is the strongest the policies use. Rotate, shear and
        translate pick their direction at random.
      cutout_const: Half side of the cutout square at level 10, in pixels.
      translate_const: Translation at level 10, in pixels.
      replace: The color of pixels uncovered by geometric ops and of cutout.

    Returns:
      The augmented uint8 image, same shape.

    Raises:
      ValueError: For an unknown op name.
    """
    if op_name in _BOX_OPS:
        raise ValueError(
            f"augmentation op {op_name!r} moves boxes: use apply_augmentation_op_with_boxes"
        )
    if op_name not in _OPS:
        raise ValueError(f"unknown augmentation op {op_name!r}; expected one of {_known_ops()}")
    func, takes_replace = _OPS[op_name]
    args = _level_to_args(op_name, tf.cast(level, tf.float32), cutout_const, translate_const)
    if takes_replace:
        args = (*args, replace)
    out = func(image, *args)
    out.set_shape(image.shape)
    return out


def apply_augmentation_op_with_boxes(
    image: tf.Tensor,
    bboxes: tf.Tensor,
    op_name: str,
    level: float | tf.Tensor,
    *,
    prob: float = 1.0,
    cutout_const: float = 100.0,
    translate_const: float = 250.0,
    replace: Sequence[int] | tf.Tensor = _REPLACE,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies one named op at `level` to an image and its boxes.

    Box-aware ops (`Rotate_BBox`, `ShearX_BBox`, `ShearY_BBox`, `TranslateX_BBox`,
    `TranslateY_BBox`, `TranslateY_Only_BBoxes`) move the boxes with the pixels; the other ops
    of `apply_augmentation_op` leave them as they are.

    Args:
      image: The uint8 `[height, width, 3]` image.
      bboxes: `[num_boxes, 4]` normalized `[ymin, xmin, ymax, xmax]`.
      op_name: An op name (`apply_augmentation_op`'s, or a box-aware one).
      level: The magnitude in [0, 10].
      prob: The op's probability; only `TranslateY_Only_BBoxes` uses it (a third of it per
        box). The caller decides whether the op runs at all.
      cutout_const: Half side of the cutout square at level 10, in pixels.
      translate_const: Translation of `Translate*_BBox` at level 10, in pixels.
      replace: The color of uncovered pixels.

    Returns:
      The augmented uint8 image (same shape) and float32 boxes (same count).

    Raises:
      ValueError: For an unknown op name.
    """
    bboxes = tf.cast(bboxes, tf.float32)
    if op_name not in _BOX_OPS:
        kwargs = {"cutout_const": cutout_const, "translate_const": translate_const}
        return apply_augmentation_op(image, op_name, level, replace=replace, **kwargs), bboxes
    args = _level_to_args(op_name, tf.cast(level, tf.float32), cutout_const, translate_const)
    if op_name == "TranslateY_Only_BBoxes":
        args = (prob, *args)
    out, moved = _BOX_OPS[op_name](image, bboxes, *args, replace)
    out.set_shape(image.shape)
    moved.set_shape(bboxes.shape)
    return out, moved


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
    if image.dtype == tf.uint8:
        return image
    return tf.cast(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0), tf.uint8)


# --------------------------------------------------------------------------------------------
# RandAugment.
# --------------------------------------------------------------------------------------------


class RandAugment:
    """RandAugment: `num_layers` random ops at one shared magnitude.

    At each layer one of the available ops, or the identity, is chosen uniformly (Model
    Garden's `len(ops) + 1` choices) and applied with the shared magnitude; rotate, shear and
    translate pick their direction at random.

    Args:
      num_layers: How many ops to apply in sequence (N in the paper).
      magnitude: The shared level (M in the paper), 10 being the policies' strongest.
      cutout_const: Half side of the cutout square at level 10, in pixels.
      translate_const: Translation at level 10, in pixels.
      magnitude_std: Standard deviation of Gaussian noise added to the magnitude at each
        layer (timm's "magnitude noise"); the noisy level is clipped to [0, 10].
      prob_to_apply: If set, each layer's op is kept only with this probability.
      exclude_ops: Op names (from `RANDAUGMENT_OPS`) to leave out.

    Raises:
      ValueError: If `exclude_ops` names an unknown op or `num_layers` is negative.

    Example:
    ```python
    augmenter = RandAugment(num_layers=2, magnitude=9)
    dataset = dataset.map(lambda image, label: (augmenter.distort(image), label))
    ```
    """

    def __init__(
        self,
        num_layers: int = 2,
        magnitude: float = 10.0,
        cutout_const: float = 40.0,
        translate_const: float = 100.0,
        magnitude_std: float = 0.0,
        prob_to_apply: float | None = None,
        exclude_ops: Iterable[str] | None = None,
    ):
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        excluded = list(exclude_ops or [])
        unknown = [name for name in excluded if name not in _OPS]
        if unknown:
            raise ValueError(
                f"exclude_ops has unknown op(s) {unknown}; expected names from "
                f"{', '.join(RANDAUGMENT_OPS)}"
            )
        self.num_layers = int(num_layers)
        self.magnitude = float(magnitude)
        self.cutout_const = float(cutout_const)
        self.translate_const = float(translate_const)
        self.magnitude_std = float(magnitude_std)
        self.prob_to_apply = None if prob_to_apply is None else float(prob_to_apply)
        self.available_ops = [name for name in RANDAUGMENT_OPS if name not in excluded]

    def _level(self) -> tf.Tensor:
        level = tf.constant(self.magnitude, tf.float32)
        if self.magnitude_std > 0:
            level += self.magnitude_std * tf.random.normal([])
            level = tf.clip_by_value(level, 0.0, _MAX_LEVEL)
        return level

    def distort(self, image: tf.Tensor) -> tf.Tensor:
        """Returns the augmented `[height, width, 3]` image, in the input's dtype.

        Non-uint8 inputs are clipped to [0, 255] and cast to uint8 for the ops.
        """
        input_dtype = image.dtype
        image = _to_uint8(image)
        for _ in range(self.num_layers):
            level = self._level()
            branches = [
                lambda name=name, img=image, level=level: apply_augmentation_op(
                    img,
                    name,
                    level,
                    cutout_const=self.cutout_const,
                    translate_const=self.translate_const,
                )
                for name in self.available_ops
            ]
            branches.append(lambda img=image: tf.identity(img))
            index = tf.random.uniform([], maxval=len(branches), dtype=tf.int32)
            augmented = tf.switch_case(index, branches)
            if self.prob_to_apply is not None:
                augmented = tf.where(tf.random.uniform([]) < self.prob_to_apply, augmented, image)
            augmented.set_shape(image.shape)
            image = augmented
        return tf.cast(image, input_dtype)


# --------------------------------------------------------------------------------------------
# AutoAugment.
# --------------------------------------------------------------------------------------------

# The published policies, as Model Garden lists them: sub-policies of (op, probability, level).
AUTOAUGMENT_POLICIES: dict[str, tuple[tuple[PolicyOp, ...], ...]] = {
    # The ImageNet policy of the AutoAugment paper.
    "v0": (
        (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)),
        (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
        (("Color", 0.4, 1), ("Rotate", 0.6, 8)),
        (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
        (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)),
        (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
        (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)),
        (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
        (("Color", 0.6, 1), ("Equalize", 1.0, 2)),
        (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
        (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)),
        (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
        (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)),
        (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
        (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)),
        (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
        (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)),
        (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
        (("Color", 1.0, 0), ("Rotate", 0.6, 2)),
        (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
        (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)),
        (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
        (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)),
        (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
        (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
    ),
    # A one-sub-policy table for debugging.
    "test": ((("TranslateX", 1.0, 4), ("Equalize", 1.0, 10)),),
    # `v0` without its sub-policies that use a geometric op.
    "simple": (
        (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
        (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
        (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)),
        (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
        (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)),
        (("Color", 0.6, 1), ("Equalize", 1.0, 2)),
        (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
        (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)),
        (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
        (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
        (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)),
        (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)),
        (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    ),
    "reduced_cifar10": (
        (("Invert", 0.1, 7), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, 8), ("Equalize", 0.9, 2)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, 5), ("Equalize", 0.5, 1)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, 7), ("AutoContrast", 0.4, 8)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, 3)),
        (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
        (("Equalize", 0.2, 8), ("Equalize", 0.6, 4)),
        (("Color", 0.9, 9), ("Equalize", 0.6, 6)),
        (("AutoContrast", 0.8, 4), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 3)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, 2), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, 8), ("Invert", 0.1, 3)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 1)),
    ),
    "svhn": (
        (("ShearX", 0.9, 4), ("Invert", 0.2, 3)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, 5)),
        (("Equalize", 0.6, 5), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, 3), ("Equalize", 0.6, 3)),
        (("Equalize", 0.6, 1), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, 3)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, 5)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, 6), ("AutoContrast", 0.8, 1)),
        (("Equalize", 0.6, 3), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, 4)),
        (("Equalize", 0.9, 5), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, 4), ("Equalize", 0.6, 7)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, 5), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, 4), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, 5)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, 8)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, 3)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, 5)),
    ),
    "reduced_imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
        (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
        (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),
        (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),
        (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
        (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
        (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
    ),
    "panoptic_deeplab_policy": (
        (("Sharpness", 0.4, 1.4), ("Brightness", 0.2, 2.0)),
        (("Equalize", 0.0, 1.8), ("Contrast", 0.2, 2.0)),
        (("Sharpness", 0.2, 1.8), ("Color", 0.2, 1.8)),
        (("Solarize", 0.2, 1.4), ("Equalize", 0.6, 1.8)),
        (("Sharpness", 0.2, 0.2), ("Equalize", 0.2, 1.4)),
    ),
    # Model Garden's generic ViT policy: panoptic-deeplab's plus cutout on every sub-policy.
    "vit": (
        (("Sharpness", 0.4, 1.4), ("Brightness", 0.2, 2.0), ("Cutout", 0.8, 8)),
        (("Equalize", 0.0, 1.8), ("Contrast", 0.2, 2.0), ("Cutout", 0.8, 8)),
        (("Sharpness", 0.2, 1.8), ("Color", 0.2, 1.8), ("Cutout", 0.8, 8)),
        (("Solarize", 0.2, 1.4), ("Equalize", 0.6, 1.8), ("Cutout", 0.8, 8)),
        (("Sharpness", 0.2, 0.2), ("Equalize", 0.2, 1.4), ("Cutout", 0.8, 8)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, 8), ("Cutout", 0.8, 8)),
        (("Invert", 0.6, 4), ("Equalize", 1.0, 8), ("Cutout", 0.8, 8)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6), ("Cutout", 0.8, 8)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5), ("Cutout", 0.8, 8)),
    ),
    # DeiT III's "3-Augment" (https://arxiv.org/abs/2204.07118): one of three ops.
    "deit3_three_augment": (
        (("Grayscale", 1.0, 0),),
        (("Solarize", 1.0, 5),),
        (("Gaussian_Noise", 1.0, 1),),
    ),
}

# Object-detection policies, whose box-aware geometric ops move boxes with the pixels; run
# them through `AutoAugment.distort_with_boxes`.
DETECTION_AUTOAUGMENT_POLICIES: dict[str, tuple[tuple[PolicyOp, ...], ...]] = {
    # The COCO policy v0 of Zoph et al., 2019, "Learning Data Augmentation Strategies for
    # Object Detection" (https://arxiv.org/abs/1906.11172).
    "detection_v0": (
        (("TranslateX_BBox", 0.6, 4), ("Equalize", 0.8, 10)),
        (("TranslateY_Only_BBoxes", 0.2, 2), ("Cutout", 0.8, 8)),
        (("Sharpness", 0.0, 8), ("ShearX_BBox", 0.4, 0)),
        (("ShearY_BBox", 1.0, 2), ("TranslateY_Only_BBoxes", 0.6, 6)),
        (("Rotate_BBox", 0.6, 10), ("Color", 1.0, 6)),
    ),
}


def _check_policies(policies: Iterable[Iterable[Sequence[Any]]]) -> list[list[PolicyOp]]:
    """Validates a policy table and returns it as lists of `(name, prob, level)` tuples."""
    checked = []
    for sub_policy in policies:
        ops = []
        for op in sub_policy:
            if len(op) != 3:
                raise ValueError(f"a policy op is (name, probability, level), got {op!r}")
            name, prob, level = op
            if name not in _OPS and name not in _BOX_OPS:
                raise ValueError(f"unknown policy op {name!r}; expected one of {_known_ops()}")
            if not 0.0 <= float(prob) <= 1.0:
                raise ValueError(f"probability of {name!r} must be in [0, 1], got {prob}")
            if not 0.0 <= float(level) <= _MAX_LEVEL:
                raise ValueError(f"level of {name!r} must be in [0, 10], got {level}")
            ops.append((str(name), float(prob), float(level)))
        if not ops:
            raise ValueError("a sub-policy needs at least one op")
        checked.append(ops)
    if not checked:
        raise ValueError("a policy needs at least one sub-policy")
    return checked


class AutoAugment:
    """AutoAugment with a published or custom policy.

    `distort` draws one sub-policy uniformly and applies its ops in order, each with its own
    probability and level.

    Args:
      augmentation_name: The policy in `AUTOAUGMENT_POLICIES`: `v0` (the paper's ImageNet
        policy), `test`, `simple`, `reduced_cifar10`, `svhn`, `reduced_imagenet`,
        `panoptic_deeplab_policy`, `vit` or `deit3_three_augment`; or in
        `DETECTION_AUTOAUGMENT_POLICIES`: `detection_v0` (for `distort_with_boxes`). Ignored
        when `policies` is given.
      policies: A custom table: sub-policies, each a sequence of `(op name, probability,
        level)`; sub-policies may have different lengths.
      cutout_const: Half side of the cutout square at level 10, in pixels.
      translate_const: Translation at level 10, in pixels.

    Raises:
      ValueError: For an unknown policy name (the message lists the known ones) or a malformed
        custom policy.
    """

    def __init__(
        self,
        augmentation_name: str = "v0",
        policies: Iterable[Iterable[Sequence[Any]]] | None = None,
        cutout_const: float = 100,
        translate_const: float = 250,
    ):
        if not policies:
            known = {**AUTOAUGMENT_POLICIES, **DETECTION_AUTOAUGMENT_POLICIES}
            if augmentation_name not in known:
                raise ValueError(
                    f"unknown AutoAugment policy {augmentation_name!r}; expected one of "
                    f"{', '.join(known)}"
                )
            policies = known[augmentation_name]
        self.augmentation_name = augmentation_name
        self.policies = _check_policies(policies)
        self.cutout_const = float(cutout_const)
        self.translate_const = float(translate_const)

    def _apply_sub_policy(self, image: tf.Tensor, sub_policy: list[PolicyOp]) -> tf.Tensor:
        """Applies each op of a sub-policy, in order, with its own probability."""
        for name, prob, level in sub_policy:
            if prob <= 0.0:
                continue

            def apply(image=image, name=name, level=level):
                return apply_augmentation_op(
                    image,
                    name,
                    level,
                    cutout_const=self.cutout_const,
                    translate_const=self.translate_const,
                )

            if prob < 1.0:
                augmented = tf.cond(
                    tf.random.uniform([]) < prob, apply, lambda image=image: tf.identity(image)
                )
                augmented.set_shape(image.shape)
            else:
                augmented = apply()
            image = augmented
        return image

    def distort(self, image: tf.Tensor) -> tf.Tensor:
        """Returns the augmented `[height, width, 3]` image, in the input's dtype.

        Non-uint8 inputs are clipped to [0, 255] and cast to uint8 for the ops. Box-aware
        policies (`detection_v0`) run as `distort_with_boxes` on an image without boxes.
        """
        if any(name in _BOX_OPS for sub in self.policies for name, _, _ in sub):
            return self.distort_with_boxes(image, tf.zeros([0, 4]))[0]
        input_dtype = image.dtype
        image = _to_uint8(image)
        branches = [
            lambda sub_policy=sub_policy: self._apply_sub_policy(image, sub_policy)
            for sub_policy in self.policies
        ]
        index = tf.random.uniform([], maxval=len(branches), dtype=tf.int32)
        augmented = tf.switch_case(index, branches)
        augmented.set_shape(image.shape)
        return tf.cast(augmented, input_dtype)

    def _apply_sub_policy_with_boxes(
        self, image: tf.Tensor, bboxes: tf.Tensor, sub_policy: list[PolicyOp]
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Applies each op of a sub-policy to the image and boxes, with its probability."""
        for name, prob, level in sub_policy:
            if prob <= 0.0:
                continue

            def apply(image=image, bboxes=bboxes, name=name, prob=prob, level=level):
                return apply_augmentation_op_with_boxes(
                    image,
                    bboxes,
                    name,
                    level,
                    prob=prob,
                    cutout_const=self.cutout_const,
                    translate_const=self.translate_const,
                )

            if prob < 1.0:
                image, bboxes = tf.cond(
                    tf.random.uniform([]) < prob,
                    apply,
                    lambda image=image, bboxes=bboxes: (tf.identity(image), tf.identity(bboxes)),
                )
            else:
                image, bboxes = apply()
        return image, bboxes

    def distort_with_boxes(
        self, image: tf.Tensor, bboxes: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Augments an image and its boxes with one randomly drawn sub-policy.

        Box-aware ops (`detection_v0`'s `*_BBox` ops) move the boxes with the pixels; boxes
        pushed out of the image keep no area (detection parsers then drop them). Other ops
        leave the boxes unchanged, so a policy with plain geometric ops (`Rotate`, `ShearX`,
        ...) puts boxes out of step with the image.

        Args:
          image: `[height, width, 3]`; non-uint8 inputs are clipped to [0, 255] and cast to
            uint8 for the ops.
          bboxes: `[num_boxes, 4]` normalized `[ymin, xmin, ymax, xmax]` (may be empty).

        Returns:
          The augmented image, in the input's dtype, and float32 `[num_boxes, 4]` boxes.
        """
        input_dtype = image.dtype
        image = _to_uint8(image)
        bboxes = tf.reshape(tf.cast(bboxes, tf.float32), [-1, 4])
        branches = [
            lambda sub_policy=sub_policy: self._apply_sub_policy_with_boxes(
                image, bboxes, sub_policy
            )
            for sub_policy in self.policies
        ]
        index = tf.random.uniform([], maxval=len(branches), dtype=tf.int32)
        augmented, moved = tf.switch_case(index, branches)
        augmented.set_shape(image.shape)
        moved.set_shape(bboxes.shape)
        return tf.cast(augmented, input_dtype), moved


# --------------------------------------------------------------------------------------------
# RandomErasing.
# --------------------------------------------------------------------------------------------


class RandomErasing:
    """Random erasing: replaces rectangles of a float image with Gaussian noise.

    With probability `probability`, between `min_count` and `max_count` rectangles are erased.
    For each, up to `trials` candidates are drawn: an area uniform in
    `[min_area, max_area]` of the image and a log-uniform aspect ratio (height / width) in
    `[min_aspect, max_aspect]`; the first candidate that fits inside the image, and whose
    rounded size still has an area in the range, is placed uniformly at random. If none
    fits, that rectangle is skipped.

    Args:
      probability: Probability of erasing anything in an image.
      min_area: Smallest rectangle area, as a fraction of the image.
      max_area: Largest rectangle area, as a fraction of the image.
      min_aspect: Smallest aspect ratio (height / width).
      max_aspect: Largest aspect ratio; `1 / min_aspect` when None.
      min_count: Fewest rectangles erased.
      max_count: Most rectangles erased.
      trials: Candidates drawn per rectangle.

    Raises:
      ValueError: For ranges that are empty or out of bounds.
    """

    def __init__(
        self,
        probability: float = 0.25,
        min_area: float = 0.02,
        max_area: float = 1 / 3,
        min_aspect: float = 0.3,
        max_aspect: float | None = None,
        min_count: int = 1,
        max_count: int = 1,
        trials: int = 10,
    ):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        if not 0.0 < min_area <= max_area <= 1.0:
            raise ValueError(f"need 0 < min_area <= max_area <= 1, got {min_area}, {max_area}")
        max_aspect = max_aspect or 1.0 / min_aspect
        if not min(min_aspect, max_aspect) > 0.0:
            raise ValueError(f"aspect ratios must be positive, got {min_aspect}, {max_aspect}")
        if not 0 <= min_count <= max_count:
            raise ValueError(f"need 0 <= min_count <= max_count, got {min_count}, {max_count}")
        if trials < 1:
            raise ValueError(f"trials must be >= 1, got {trials}")
        self.probability = float(probability)
        self.min_area = float(min_area)
        self.max_area = float(max_area)
        self.min_log_aspect = math.log(min(min_aspect, max_aspect))
        self.max_log_aspect = math.log(max(min_aspect, max_aspect))
        self.min_count = int(min_count)
        self.max_count = int(max_count)
        self.trials = int(trials)

    def _rectangle_mask(self, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
        """Samples one rectangle; returns its `[height, width, 1]` mask (empty if none fits)."""
        area = tf.cast(height * width, tf.float32)
        target = tf.random.uniform([self.trials], self.min_area * area, self.max_area * area)
        aspect = tf.exp(tf.random.uniform([self.trials], self.min_log_aspect, self.max_log_aspect))
        rect_h = tf.cast(tf.round(tf.sqrt(target * aspect)), tf.int32)
        rect_w = tf.cast(tf.round(tf.sqrt(target / aspect)), tf.int32)
        rect_area = tf.cast(rect_h * rect_w, tf.float32)
        fits = (
            (rect_h >= 1)
            & (rect_w >= 1)
            & (rect_h < height)
            & (rect_w < width)
            & (rect_area >= self.min_area * area)
            & (rect_area <= self.max_area * area)
        )
        first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
        found = tf.reduce_any(fits)
        rect_h = tf.where(found, rect_h[first], 0)
        rect_w = tf.where(found, rect_w[first], 0)
        top = tf.random.uniform([], 0, height - rect_h + 1, dtype=tf.int32)
        left = tf.random.uniform([], 0, width - rect_w + 1, dtype=tf.int32)
        rows = tf.range(height)[:, None, None]
        cols = tf.range(width)[None, :, None]
        return (rows >= top) & (rows < top + rect_h) & (cols >= left) & (cols < left + rect_w)

    def _erase(self, image: tf.Tensor) -> tf.Tensor:
        size = tf.shape(image)
        height, width = size[0], size[1]
        count = tf.random.uniform([], self.min_count, self.max_count + 1, dtype=tf.int32)
        mask = tf.zeros([height, width, 1], tf.bool)
        for index in range(self.max_count):
            mask |= self._rectangle_mask(height, width) & (index < count)
        noise = tf.random.normal(size, dtype=image.dtype)
        return tf.where(mask, noise, image)

    def distort(self, image: tf.Tensor) -> tf.Tensor:
        """Returns the float `[height, width, channels]` image with rectangles erased.

        Raises:
          TypeError: If the image is not floating point (erase after normalization).
        """
        if not image.dtype.is_floating:
            raise TypeError(f"RandomErasing needs a float image, got {image.dtype.name}")
        erased = tf.cond(
            tf.random.uniform([]) < self.probability,
            lambda: self._erase(image),
            lambda: tf.identity(image),
        )
        erased.set_shape(image.shape)
        return erased


# --------------------------------------------------------------------------------------------
# Mixup and CutMix.
# --------------------------------------------------------------------------------------------


def _sample_beta(alpha: float, shape: tf.Tensor) -> tf.Tensor:
    """Draws Beta(alpha, alpha) as `X / (X + Y)` with `X, Y ~ Gamma(alpha, 1)`."""
    x = tf.random.gamma(shape, alpha)
    y = tf.random.gamma(shape, alpha)
    total = x + y
    # Both gammas can underflow to 0 for tiny alpha; the limit is then 0 or 1, either side.
    return tf.where(total > 0, x / tf.maximum(total, 1e-30), tf.cast(x >= y, tf.float32))


class MixupAndCutmix:
    """Mixup and CutMix on a batch, with label smoothing.

    Called on `(images, labels)`, it pairs each example with the one at the mirrored batch
    position (`tf.reverse(images, [0])`). With probability `prob` the batch is mixed: CutMix
    with probability `switch_prob`, Mixup otherwise (only the enabled one when an alpha is 0).
    Each example draws its own lambda from Beta(alpha, alpha):

    - Mixup: `lam * image + (1 - lam) * partner`.
    - CutMix: a box of side `sqrt(1 - lam)` times the image's height and width, centered
      uniformly at random and clipped to the image, is pasted from the partner; lambda is then
      recomputed as one minus the pasted area fraction.

    The labels become `lam * smooth(label) + (1 - lam) * smooth(partner label)`, where smoothing
    puts `label_smoothing / num_classes` on every class. Unmixed batches get smoothed labels.

    Args:
      num_classes: The number of classes of the one-hot labels.
      mixup_alpha: Beta parameter of Mixup; 0 disables Mixup.
      cutmix_alpha: Beta parameter of CutMix; 0 disables CutMix.
      prob: Probability of mixing a batch.
      switch_prob: Probability of CutMix rather than Mixup when both are enabled.
      label_smoothing: Label smoothing applied to every label.

    Example:
    ```python
    mixer = MixupAndCutmix(num_classes=1000)
    dataset = dataset.batch(128).map(mixer)
    ```
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
    ):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"alphas must be >= 0, got {mixup_alpha}, {cutmix_alpha}")
        if not 0.0 <= prob <= 1.0 or not 0.0 <= switch_prob <= 1.0:
            raise ValueError(f"prob and switch_prob must be in [0, 1], got {prob}, {switch_prob}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.num_classes = int(num_classes)
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.mix_prob = float(prob)
        self.label_smoothing = float(label_smoothing)
        if self.mixup_alpha > 0 and self.cutmix_alpha == 0:
            switch_prob = 0.0
        elif self.mixup_alpha == 0 and self.cutmix_alpha > 0:
            switch_prob = 1.0
        self.switch_prob = float(switch_prob)

    def __call__(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.distort(images, labels)

    def _smooth_labels(self, labels: tf.Tensor) -> tf.Tensor:
        if labels.dtype.is_floating:
            one_hot = tf.cast(labels, tf.float32)
        else:
            one_hot = tf.one_hot(tf.reshape(labels, [-1]), self.num_classes)
        return one_hot * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes

    def _mixup(self, images: tf.Tensor, batch_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        lam = _sample_beta(self.mixup_alpha, [batch_size])
        weight = tf.reshape(lam, [-1] + [1] * (images.shape.rank - 1))
        values = images if images.dtype.is_floating else tf.cast(images, tf.float32)
        weight = tf.cast(weight, values.dtype)
        mixed = weight * values + (1.0 - weight) * tf.reverse(values, [0])
        if not images.dtype.is_floating:
            mixed = tf.cast(tf.round(mixed), images.dtype)
        return mixed, lam

    def _cutmix(self, images: tf.Tensor, batch_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        lam = _sample_beta(self.cutmix_alpha, [batch_size])
        size = tf.shape(images)
        height, width = size[-3], size[-2]
        ratio = tf.sqrt(1.0 - lam)
        cut_h = tf.cast(ratio * tf.cast(height, tf.float32), tf.int32)
        cut_w = tf.cast(ratio * tf.cast(width, tf.float32), tf.int32)
        center_y = tf.random.uniform([batch_size], 0, height, dtype=tf.int32)
        center_x = tf.random.uniform([batch_size], 0, width, dtype=tf.int32)
        top = tf.clip_by_value(center_y - cut_h // 2, 0, height)
        bottom = tf.clip_by_value(center_y - cut_h // 2 + cut_h, 0, height)
        left = tf.clip_by_value(center_x - cut_w // 2, 0, width)
        right = tf.clip_by_value(center_x - cut_w // 2 + cut_w, 0, width)
        rows = tf.range(height)[None, :, None]
        cols = tf.range(width)[None, None, :]
        inside = (
            (rows >= top[:, None, None])
            & (rows < bottom[:, None, None])
            & (cols >= left[:, None, None])
            & (cols < right[:, None, None])
        )
        # [batch, height, width] -> [batch, (time,) height, width, 1].
        inside = tf.reshape(
            inside, [batch_size] + [1] * (images.shape.rank - 4) + [height, width, 1]
        )
        mixed = tf.where(inside, tf.reverse(images, [0]), images)
        pasted = tf.cast((bottom - top) * (right - left), tf.float32)
        lam = 1.0 - pasted / tf.cast(height * width, tf.float32)
        return mixed, lam

    def distort(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Mixes a batch and returns `(images, soft_labels)`.

        Args:
          images: `[batch, height, width, channels]` (or `[batch, time, height, width,
            channels]` for video); float, or integer (mixed in float, rounded back).
          labels: Integer class ids of shape `[batch]` or `[batch, 1]`, or float one-hot
            (or soft) labels of shape `[batch, num_classes]`.

        Returns:
          The mixed images (same dtype and shape) and float32 labels of shape
          `[batch, num_classes]` whose rows sum to 1.
        """
        if images.shape.rank not in (4, 5):
            raise ValueError(f"images must be rank 4 or 5, got rank {images.shape.rank}")
        smooth = self._smooth_labels(labels)
        batch_size = tf.shape(images)[0]
        if self.mixup_alpha == 0 and self.cutmix_alpha == 0:
            return images, smooth

        def mix() -> tuple[tf.Tensor, tf.Tensor]:
            if self.switch_prob >= 1.0:
                mixed, lam = self._cutmix(images, batch_size)
            elif self.switch_prob <= 0.0:
                mixed, lam = self._mixup(images, batch_size)
            else:
                mixed, lam = tf.cond(
                    tf.random.uniform([]) < self.switch_prob,
                    lambda: self._cutmix(images, batch_size),
                    lambda: self._mixup(images, batch_size),
                )
            lam = lam[:, None]
            return mixed, lam * smooth + (1.0 - lam) * tf.reverse(smooth, [0])

        if self.mix_prob >= 1.0:
            mixed, mixed_labels = mix()
        else:
            mixed, mixed_labels = tf.cond(
                tf.random.uniform([]) < self.mix_prob,
                mix,
                lambda: (tf.identity(images), smooth),
            )
        mixed.set_shape(images.shape)
        mixed_labels.set_shape([images.shape[0], self.num_classes])
        return mixed, mixed_labels
