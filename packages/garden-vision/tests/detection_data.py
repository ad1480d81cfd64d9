"""Tiny object-detection data that garden-vision's tests write themselves.

Records use Model Garden's detection tf.Example layout (what `TfExampleDecoder` reads and
`garden-coco-to-tfrecords` writes). The API, for this wave's decoder, parser, converter and
task tests:

- `encode_image(image, image_format)`: a uint8 `[H, W, 3]` array as PNG or JPEG bytes.
- `detection_example(image, boxes, classes, ...)`: one serialized tf.Example; boxes are
  normalized `[ymin, xmin, ymax, xmax]`; every optional feature can be left out.
- `box_images(num, ...)`: random images with a flat-coloured rectangle drawn at each box, so a
  box can be found back in the pixels; returns `DetectionSample`s.
- `write_detection_tfrecords(path, samples, ...)`: the samples as a TFRecord file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class DetectionSample:
    """One image and its objects; `boxes` are normalized `[ymin, xmin, ymax, xmax]`."""

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    is_crowd: np.ndarray
    source_id: str
    masks: np.ndarray | None = None


def encode_image(image: np.ndarray, image_format: str = "png") -> bytes:
    """Encodes a uint8 `[height, width, 3]` (or `[height, width, 1]`) array."""
    image = np.asarray(image, np.uint8)
    if image_format == "png":
        return tf.io.encode_png(image).numpy()
    if image_format in ("jpeg", "jpg"):
        return tf.io.encode_jpeg(image, quality=95).numpy()
    raise ValueError(f"image_format {image_format!r}: expected png or jpeg")


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def detection_example(
    image: np.ndarray | None,
    boxes: Sequence[Sequence[float]] | np.ndarray,
    classes: Sequence[int] | None,
    *,
    encoded: bytes | None = None,
    image_format: str = "png",
    source_id: str | None = None,
    include_size: bool = True,
    is_crowd: Sequence[int] | None = None,
    areas: Sequence[float] | None = None,
    class_texts: Sequence[str] | None = None,
    masks: np.ndarray | None = None,
    attributes: dict[str, Sequence[int]] | None = None,
) -> bytes:
    """A serialized detection tf.Example.

    Args:
      image: uint8 `[height, width, 3]`; encoded with `image_format` unless `encoded` is
        given (then it only supplies the size and may be None when `include_size` is False).
      boxes: `[num_objects, 4]` normalized `[ymin, xmin, ymax, xmax]`.
      classes: `[num_objects]` class ids, or None to leave out `image/object/class/label`.
      encoded: Ready-made image bytes.
      image_format: `png` or `jpeg`.
      source_id: `image/source_id`; None leaves it out.
      include_size: Write `image/height` and `image/width`.
      is_crowd, areas: Optional per-object features; None leaves them out.
      class_texts: Optional `image/object/class/text` names.
      masks: Optional uint8 `[num_objects, height, width]` masks, written as PNGs.
      attributes: Optional `image/object/attribute/{name}` int lists.
    """
    boxes = np.asarray(boxes, np.float32).reshape([-1, 4])
    if encoded is None:
        encoded = encode_image(image, image_format)
    feature = {
        "image/encoded": _bytes([encoded]),
        "image/format": _bytes([image_format.encode()]),
        "image/object/bbox/ymin": _floats(boxes[:, 0]),
        "image/object/bbox/xmin": _floats(boxes[:, 1]),
        "image/object/bbox/ymax": _floats(boxes[:, 2]),
        "image/object/bbox/xmax": _floats(boxes[:, 3]),
    }
    if include_size:
        feature["image/height"] = _ints([image.shape[0]])
        feature["image/width"] = _ints([image.shape[1]])
    if source_id is not None:
        feature["image/source_id"] = _bytes([source_id.encode()])
    if classes is not None:
        feature["image/object/class/label"] = _ints(classes)
    if is_crowd is not None:
        feature["image/object/is_crowd"] = _ints(is_crowd)
    if areas is not None:
        feature["image/object/area"] = _floats(areas)
    if class_texts is not None:
        feature["image/object/class/text"] = _bytes([text.encode() for text in class_texts])
    if masks is not None:
        pngs = [encode_image(np.asarray(mask, np.uint8)[:, :, None]) for mask in masks]
        feature["image/object/mask"] = _bytes(pngs)
    for name, values in (attributes or {}).items():
        feature[f"image/object/attribute/{name}"] = _ints(values)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def box_images(
    num: int,
    height: int = 48,
    width: int = 64,
    max_boxes: int = 3,
    num_classes: int = 4,
    seed: int = 0,
    with_masks: bool = False,
    crowd_fraction: float = 0.0,
) -> list[DetectionSample]:
    """Random samples: dark noise with a bright rectangle of colour `class * 50` per box.

    Boxes are whole pixels (so a box's pixel extent is exact) at least 4 pixels a side;
    classes are in `[1, num_classes)`; source ids are `"1"`, `"2"`, ...; a sample may have no
    boxes. With `with_masks`, each object's mask is its rectangle (uint8 0/1).
    """
    rng = np.random.default_rng(seed)
    samples = []
    for index in range(num):
        image = rng.integers(0, 40, size=(height, width, 3)).astype(np.uint8)
        count = int(rng.integers(0, max_boxes + 1))
        boxes, classes, masks = [], [], []
        for _ in range(count):
            top = int(rng.integers(0, height - 4))
            left = int(rng.integers(0, width - 4))
            bottom = int(rng.integers(top + 4, height + 1))
            right = int(rng.integers(left + 4, width + 1))
            label = int(rng.integers(1, num_classes))
            image[top:bottom, left:right] = 50 * label + 50
            boxes.append([top / height, left / width, bottom / height, right / width])
            classes.append(label)
            mask = np.zeros([height, width], np.uint8)
            mask[top:bottom, left:right] = 1
            masks.append(mask)
        is_crowd = (rng.random(count) < crowd_fraction).astype(np.int64)
        samples.append(
            DetectionSample(
                image=image,
                boxes=np.asarray(boxes, np.float32).reshape([-1, 4]),
                classes=np.asarray(classes, np.int64),
                is_crowd=is_crowd,
                source_id=str(index + 1),
                masks=np.asarray(masks, np.uint8).reshape([-1, height, width])
                if with_masks
                else None,
            )
        )
    return samples


def sample_example(sample: DetectionSample, image_format: str = "png") -> bytes:
    """The serialized tf.Example of a `DetectionSample` (areas in pixels, COCO style)."""
    height, width = sample.image.shape[:2]
    boxes = sample.boxes
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) * height * width
    return detection_example(
        sample.image,
        boxes,
        sample.classes,
        image_format=image_format,
        source_id=sample.source_id,
        is_crowd=sample.is_crowd,
        areas=areas,
        masks=sample.masks,
    )


def write_detection_tfrecords(
    path: str | os.PathLike, samples: Sequence[DetectionSample], image_format: str = "png"
) -> str:
    """Writes the samples into one TFRecord file; returns its path."""
    path = os.fspath(path)
    with tf.io.TFRecordWriter(path) as writer:
        for sample in samples:
            writer.write(sample_example(sample, image_format))
    return path


def serve_three_ways(export_dir: str, samples: Sequence[DetectionSample]) -> list[dict]:
    """An exported detector's outputs for the samples' images through its `serving_default`
    (image_tensor), `image_bytes` (PNGs) and `tf_example` signatures, in that order."""
    signatures = tf.saved_model.load(export_dir).signatures
    assert set(signatures) == {"serving_default", "image_bytes", "tf_example"}
    images = np.stack([sample.image for sample in samples])
    encoded = [encode_image(sample.image, "png") for sample in samples]
    examples = [
        detection_example(s.image, s.boxes, s.classes, source_id=s.source_id) for s in samples
    ]
    return [
        signatures["serving_default"](tf.constant(images)),
        signatures["image_bytes"](tf.constant(encoded)),
        signatures["tf_example"](tf.constant(examples)),
    ]
