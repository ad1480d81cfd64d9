"""Tiny semantic segmentation data for the tests: images of coloured rectangles on dark noise
(one colour per class) with their label maps, as NumPy arrays and as TFRecords in Model
Garden's segmentation layout (`image/encoded` PNG or JPEG, `image/segmentation/class/encoded`
PNG)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

#: RGB colour of classes 1, 2, ... (class 0 is the dark background).
CLASS_COLOURS = np.array(
    [[230, 40, 40], [40, 200, 60], [60, 80, 240], [240, 220, 40], [200, 60, 220]], np.uint8
)
IGNORE_LABEL = 255


def segmentation_samples(
    count: int,
    *,
    height: int,
    width: int,
    num_classes: int,
    seed: int,
    ignore_rows: int = 2,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` `(image uint8 [H, W, 3], mask uint8 [H, W])` pairs: 1-3 rectangles of random
    classes (1 to num_classes - 1) in their class colours, later ones on top; the first
    `ignore_rows` rows of each mask are `IGNORE_LABEL`."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        image = rng.integers(0, 40, (height, width, 3)).astype(np.uint8)
        mask = np.zeros((height, width), np.uint8)
        for _ in range(rng.integers(1, 4)):
            class_id = int(rng.integers(1, num_classes))
            y0, x0 = int(rng.integers(0, height - 8)), int(rng.integers(0, width - 8))
            y1 = int(rng.integers(y0 + 6, min(height, y0 + height // 2) + 1))
            x1 = int(rng.integers(x0 + 6, min(width, x0 + width // 2) + 1))
            image[y0:y1, x0:x1] = CLASS_COLOURS[class_id - 1]
            mask[y0:y1, x0:x1] = class_id
        mask[:ignore_rows] = IGNORE_LABEL
        samples.append((image, mask))
    return samples


def segmentation_example(image: np.ndarray, mask: np.ndarray, image_format: str = "png") -> bytes:
    """A serialized tf.Example in Model Garden's segmentation layout."""
    encoded = (
        tf.io.encode_png(image) if image_format == "png" else tf.io.encode_jpeg(image, quality=95)
    ).numpy()

    def feature(value: bytes | int) -> tf.train.Feature:
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": feature(encoded),
        "image/format": feature(image_format.encode()),
        "image/height": feature(int(image.shape[0])),
        "image/width": feature(int(image.shape[1])),
        "image/segmentation/class/encoded": feature(
            tf.io.encode_png(mask[..., np.newaxis]).numpy()
        ),
        "image/segmentation/class/format": feature(b"png"),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def write_segmentation_tfrecords(
    path: str | pathlib.Path, samples: Iterable[tuple[np.ndarray, np.ndarray]]
) -> str:
    """Writes the samples as one TFRecord file; returns its path."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, mask in samples:
            writer.write(segmentation_example(image, mask))
    return str(path)


def iou_per_class(
    labels: Sequence[np.ndarray], predictions: Sequence[np.ndarray], num_classes: int
) -> np.ndarray:
    """NumPy IoU per class over all pixels whose label is not `IGNORE_LABEL` (0 where a class
    is absent from both)."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for label, prediction in zip(labels, predictions, strict=True):
        valid = label != IGNORE_LABEL
        np.add.at(confusion, (label[valid].astype(int), prediction[valid].astype(int)), 1)
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
