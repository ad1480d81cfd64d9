"""Tiny labelled image data that garden-vision's tests write themselves."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

IMAGE_SIZE = 24
NUM_CLASSES = 3


def colour_images(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`num` noisy images whose class is the dominant colour (red, green or blue)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=num)
    images = rng.integers(0, 90, size=(num, IMAGE_SIZE, IMAGE_SIZE, 3))
    for image, label in zip(images, labels, strict=True):
        image[..., label] += 150
    return images.astype(np.uint8), labels.astype(np.int64)


def example(encoded: bytes, label: int, fmt: bytes = b"png") -> bytes:
    """A tf.Example in Model Garden's classification layout."""

    def bytes_feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def int_feature(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    feature = {
        "image/encoded": bytes_feature(encoded),
        "image/format": bytes_feature(fmt),
        "image/class/label": int_feature(int(label)),
        "image/class/text": bytes_feature(f"class_{int(label)}".encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecords(path_prefix, images, labels, num_files: int = 2) -> str:
    """Writes PNG-encoded examples into `num_files` files; returns their glob pattern."""
    for shard in range(num_files):
        with tf.io.TFRecordWriter(f"{path_prefix}-{shard:05d}.tfrecord") as writer:
            for image, label in list(zip(images, labels, strict=True))[shard::num_files]:
                writer.write(example(tf.io.encode_png(image).numpy(), label))
    return f"{path_prefix}-*.tfrecord"
