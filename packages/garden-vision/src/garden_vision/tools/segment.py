"""Segments image files with an exported segmentation model and draws the label map.

Reads a SavedModel written by `garden export` for a semantic segmentation experiment (its
`image_tensor` or `image_bytes` signature), runs it on each image, maps the predicted logits
back to the image's own pixels (through the `image_info` the export returns: the resized
image's window of the logits, bilinearly resized to the image's size, then the arg-max),
prints the share of the image each class covers, and with `--output_dir` writes `NAME.png`:
the image with every pixel of a class other than the background (class 0) tinted half-way
to its class colour (the colours of `garden-detect`). With `--mask_dir` it also writes
`NAME.png` there: the label map itself, one uint8 class id per pixel. PNGs are written under
a temporary name and renamed into place when complete.

Usage:

    garden-segment --saved_model_dir /tmp/segmenter --image street.jpg \\
        [--image more.png ...] [--output_dir /tmp/overlays] [--mask_dir /tmp/labels] \\
        [--label_file labels.txt]

`--label_file` holds one class name per line for class ids 1, 2, ... (class 0 is the
background), or `id,name` lines, as for `garden-detect`.
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
from garden_vision.tools import detect

_PROG = "garden-segment"


def segment(function: Any, kind: str, encoded: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Runs the model on one encoded image; returns the image and its `[height, width]`
    int32 label map at the image's own size."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    if kind == "tensor":
        outputs = function(tf.expand_dims(image, 0))
    else:
        outputs = function(tf.constant([encoded]))
    if "logits" not in outputs:
        raise detect.DetectError(
            f"the model returns {', '.join(sorted(outputs))}, not `logits`: export a "
            "segmentation experiment"
        )
    logits = outputs["logits"][0]
    height, width = int(image.shape[0]), int(image.shape[1])
    if "image_info" in outputs:
        info = outputs["image_info"][0].numpy()
        # The resized image's window in the (padded) serving size, at the logits' scale.
        scale_y = logits.shape[0] / info[1][0]
        scale_x = logits.shape[1] / info[1][1]
        window_h = max(1, int(round(height * info[2][0] * scale_y)))
        window_w = max(1, int(round(width * info[2][1] * scale_x)))
        logits = logits[:window_h, :window_w]
    logits = tf.image.resize(logits, [height, width], method="bilinear")
    return image.numpy(), tf.argmax(logits, axis=-1, output_type=tf.int32).numpy()


def draw_labels(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The uint8 image with each non-background class's pixels tinted half-way to its
    class colour."""
    drawn = image.astype(np.float32)
    for class_id in np.unique(labels):
        if class_id == 0:
            continue
        inside = labels == class_id
        colour = detect._PALETTE[int(class_id) % len(detect._PALETTE)] * 255.0
        drawn[inside] = 0.5 * drawn[inside] + 0.5 * colour
    return np.round(drawn).astype(np.uint8)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Segment images with an exported Garden segmentation model.",
    )
    parser.add_argument("--saved_model_dir", required=True, help="from `garden export`")
    parser.add_argument("--image", required=True, action="append", help="an image file")
    parser.add_argument("--output_dir", help="write NAME.png with the classes tinted here")
    parser.add_argument("--mask_dir", help="write NAME.png label maps (class ids) here")
    parser.add_argument("--label_file", help="class names, one per line from class 1")
    return parser


def _write_png(directory: str, path: str, pixels: np.ndarray) -> str:
    tf.io.gfile.makedirs(directory)
    stem = os.path.splitext(os.path.basename(path))[0]
    output = os.path.join(directory, f"{stem}.png")
    atomic_write.write_bytes(output, tf.io.encode_png(pixels).numpy())
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns its exit status (1 on bad input, with a one-line error)."""
    args = _parser().parse_args(argv)
    try:
        names = detect.read_label_file(args.label_file) if args.label_file else {}
        function, kind = detect._signature(args.saved_model_dir)
        for path in args.image:
            try:
                with tf.io.gfile.GFile(path, "rb") as f:
                    encoded = f.read()
                image, labels = segment(function, kind, encoded)
            except (OSError, tf.errors.OpError) as error:
                message = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise detect.DetectError(
                    f"--image {path}: cannot be read as an image ({message})"
                ) from None
            classes, counts = np.unique(labels, return_counts=True)
            print(f"{path}: {labels.shape[0]}x{labels.shape[1]} pixels")
            for class_id, count in zip(classes, counts, strict=True):
                name = "background" if class_id == 0 else names.get(int(class_id), "")
                label = f"{int(class_id)} {name}".strip()
                print(f"  {label:<20} {count / labels.size:7.2%}")
            if args.output_dir:
                output = _write_png(args.output_dir, path, draw_labels(image, labels))
                print(f"  wrote {output}")
            if args.mask_dir:
                if classes.max() > 255:
                    raise detect.DetectError(
                        f"--mask_dir: class {classes.max()} does not fit a uint8 PNG"
                    )
                output = _write_png(args.mask_dir, path, labels.astype(np.uint8)[..., None])
                print(f"  wrote {output}")
    except detect.DetectError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


def run() -> int:
    """The `garden-segment` console script."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
