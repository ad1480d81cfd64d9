"""Detects objects in image files with an exported detector and draws the boxes.

Reads a SavedModel written by `garden export` for a detection experiment (its
`image_tensor` or `image_bytes` signature), runs it on each image, prints one line per
detection above `--min_score` (class id, class name when `--label_file` names them, score,
and the box `[ymin, xmin, ymax, xmax]` in the image's own pixels), and with `--output_dir`
writes `NAME.png` beside nothing else: the image with every kept box drawn, one colour per
class, and for an instance-segmentation model (Mask R-CNN, whose export returns
`detection_masks`) each kept instance's mask pasted into the image and tinted in its
class colour. PNGs are written under a temporary name and renamed into place when complete.

Usage:

    garden-detect --saved_model_dir /tmp/detector --image street.jpg \\
        [--image more.png ...] [--output_dir /tmp/boxes] [--min_score 0.3] \\
        [--label_file labels.txt]

`--label_file` holds one class name per line for class ids 1, 2, ... (class 0 is the
background), or `id,name` lines (a Model Garden CSV label map).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from garden_orbit.utils import atomic_write
from garden_vision.ops import mask_ops

_PROG = "garden-detect"
# Distinct colours (RGB, 0-1) cycled through by class id.
_PALETTE = np.array(
    [
        [0.90, 0.10, 0.15],
        [0.10, 0.60, 0.95],
        [0.20, 0.80, 0.20],
        [1.00, 0.75, 0.00],
        [0.60, 0.25, 0.85],
        [0.00, 0.80, 0.80],
        [1.00, 0.45, 0.00],
        [0.95, 0.30, 0.70],
        [0.55, 0.55, 0.00],
        [0.55, 0.27, 0.07],
    ],
    dtype=np.float32,
)


class DetectError(Exception):
    """Bad input for `garden-detect`; the message is one line."""


def read_label_file(path: str) -> dict[int, str]:
    """Class id -> name from one name per line (ids 1, 2, ...) or `id,name` lines.

    Raises:
      DetectError: If the file cannot be read or an `id,name` line has no integer id.
    """
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            lines = [line.strip() for line in f.read().splitlines()]
    except (OSError, tf.errors.OpError) as error:
        raise DetectError(f"--label_file {path}: cannot be read ({error})") from None
    names: dict[int, str] = {}
    lines = [line for line in lines if line]
    if lines and all("," in line for line in lines):
        for number, line in enumerate(lines, 1):
            class_id, _, name = line.partition(",")
            try:
                names[int(class_id)] = name.strip()
            except ValueError:
                raise DetectError(
                    f"--label_file {path}, line {number}: {class_id!r} is not a class id"
                ) from None
        return names
    return {index: name for index, name in enumerate(lines, 1)}


def _signature(saved_model_dir: str) -> tuple[Any, str]:
    """The serving function of the SavedModel and its input kind (`tensor` or `bytes`)."""
    try:
        loaded = tf.saved_model.load(saved_model_dir)
    except (OSError, tf.errors.OpError, ValueError) as error:
        raise DetectError(
            f"--saved_model_dir {saved_model_dir}: not a readable SavedModel ({error})"
        ) from None
    for key in ("serving_default", "image_tensor", "image_bytes"):
        function = loaded.signatures.get(key)
        if function is None:
            continue
        (spec,) = function.structured_input_signature[1].values()
        if spec.dtype == tf.uint8 and spec.shape.rank == 4:
            return function, "tensor"
        if spec.dtype == tf.string and spec.shape.rank == 1:
            return function, "bytes"
    raise DetectError(
        f"--saved_model_dir {saved_model_dir}: no image_tensor or image_bytes signature "
        f"(it has {', '.join(sorted(loaded.signatures)) or 'none'}); export the model "
        "with --input_type image_tensor"
    )


def detect(function: Any, kind: str, encoded: bytes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Runs the detector on one encoded image; returns the image and its detections.

    The boxes are mapped to the image's own pixels (through `image_info` when the model
    returns pixels of its resized input, or from normalized coordinates). With
    `detection_masks` in the outputs the detections also hold `masks`: `[count, height,
    width]` 0/1 masks pasted into the image.
    """
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    if kind == "tensor":
        outputs = function(tf.expand_dims(image, 0))
    else:
        outputs = function(tf.constant([encoded]))
    outputs = {key: value.numpy()[0] for key, value in outputs.items()}
    count = int(outputs["num_detections"])
    height, width = image.shape[0], image.shape[1]

    def to_image_pixels(boxes: np.ndarray) -> np.ndarray:
        boxes = boxes[:count].astype(np.float64)
        if "image_info" in outputs:
            boxes = boxes / np.tile(outputs["image_info"][2], 2)
        elif boxes.size and boxes.max() <= 1.0 + 1e-6:
            boxes = boxes * np.array([height, width, height, width])
        return np.clip(boxes, 0.0, [height, width, height, width])

    boxes = to_image_pixels(outputs["detection_boxes"])
    found = {
        "boxes": boxes,
        "scores": outputs["detection_scores"][:count],
        "classes": outputs["detection_classes"][:count].astype(np.int64),
    }
    if "detection_masks" in outputs:
        # The masks cover the outer boxes when the model has them.
        mask_boxes = boxes
        if "detection_outer_boxes" in outputs:
            mask_boxes = to_image_pixels(outputs["detection_outer_boxes"])
        found["masks"] = mask_ops.paste_instance_masks_yxyx(
            outputs["detection_masks"][:count], mask_boxes, height, width
        )
    return image.numpy(), found


def draw_masks(image: np.ndarray, masks: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The uint8 image with each 0/1 mask `[height, width]` tinted half-way to its class colour."""
    drawn = image.astype(np.float32)
    for mask, class_id in zip(masks, classes, strict=True):
        colour = _PALETTE[int(class_id) % len(_PALETTE)] * 255.0
        inside = mask.astype(bool)
        drawn[inside] = 0.5 * drawn[inside] + 0.5 * colour
    return np.round(drawn).astype(np.uint8)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The uint8 image with each box (pixels, yxyx) drawn two pixels wide in its class colour."""
    height, width = image.shape[:2]
    if len(boxes) == 0:
        return image
    drawn = tf.cast(image[np.newaxis], tf.float32) / 255.0
    normalized = boxes / np.array([height, width, height, width])
    for class_id in np.unique(classes):
        colour = _PALETTE[int(class_id) % len(_PALETTE)]
        chosen = normalized[classes == class_id]
        # Two nested outlines, one pixel apart, make a line visible at any size.
        inset = np.array([1 / height, 1 / width, -1 / height, -1 / width])
        for offset in (0.0, 1.0):
            outline = np.clip(chosen + offset * inset, 0.0, 1.0).astype(np.float32)
            drawn = tf.image.draw_bounding_boxes(drawn, outline[np.newaxis], colour[np.newaxis])
    return tf.cast(tf.round(drawn[0] * 255.0), tf.uint8).numpy()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Detect objects in images with an exported Garden detector.",
    )
    parser.add_argument("--saved_model_dir", required=True, help="from `garden export`")
    parser.add_argument("--image", required=True, action="append", help="an image file")
    parser.add_argument("--output_dir", help="write NAME.png with the boxes drawn here")
    parser.add_argument("--min_score", type=float, default=0.3)
    parser.add_argument("--label_file", help="class names, one per line from class 1")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns its exit status (1 on bad input, with a one-line error)."""
    args = _parser().parse_args(argv)
    try:
        if not 0.0 <= args.min_score <= 1.0:
            raise DetectError(f"--min_score {args.min_score}: expected a score in [0, 1]")
        names = read_label_file(args.label_file) if args.label_file else {}
        function, kind = _signature(args.saved_model_dir)
        for path in args.image:
            try:
                with tf.io.gfile.GFile(path, "rb") as f:
                    encoded = f.read()
                image, found = detect(function, kind, encoded)
            except (OSError, tf.errors.OpError) as error:
                message = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise DetectError(
                    f"--image {path}: cannot be read as an image ({message})"
                ) from None
            keep = found["scores"] >= args.min_score
            boxes, scores, classes = (found[k][keep] for k in ("boxes", "scores", "classes"))
            if "masks" in found:
                image = draw_masks(image, found["masks"][keep], classes)
            print(f"{path}: {len(scores)} detections with score >= {args.min_score:g}")
            for box, score, class_id in zip(boxes, scores, classes, strict=True):
                name = names.get(int(class_id), "")
                label = f"{int(class_id)} {name}".strip()
                coordinates = ", ".join(f"{value:.1f}" for value in box)
                print(f"  {label:<20} {score:.3f}  [{coordinates}]")
            if args.output_dir:
                tf.io.gfile.makedirs(args.output_dir)
                stem = os.path.splitext(os.path.basename(path))[0]
                output = os.path.join(args.output_dir, f"{stem}.png")
                png = tf.io.encode_png(draw_boxes(image, boxes, classes)).numpy()
                atomic_write.write_bytes(output, png)
                print(f"  wrote {output}")
    except DetectError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


def run() -> int:
    """The `garden-detect` console script."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
