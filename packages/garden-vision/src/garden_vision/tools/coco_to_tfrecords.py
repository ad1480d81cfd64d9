"""Writes a COCO annotation file and its images into sharded TFRecords of detection tf.Examples.

The input is a COCO annotation JSON (`images`, `annotations`, `categories`, as COCO's
`instances_*.json`) and the folder holding its images (`image_dir/file_name`). Each image
becomes one tf.Example in Model Garden's detection layout, which its
`TfExampleDecoder` (and Garden's) reads:

* `image/encoded`: the image file's bytes, kept as they are (JPEG or PNG);
  `image/format`: `jpeg` or `png`; `image/filename`: the COCO `file_name`;
  `image/source_id`: the COCO image id as text; `image/height`, `image/width`: the size in
  pixels (checked against the file); `image/key/sha256`: the hex SHA-256 of the bytes.
* per object: `image/object/bbox/{ymin,xmin,ymax,xmax}` normalized to [0, 1] (COCO's
  [x, y, width, height] pixel boxes divided by the image size), `image/object/class/label`:
  the COCO category id (ids keep their gaps; 0 stays background),
  `image/object/class/text`: the category name, `image/object/is_crowd`: COCO's `iscrowd`,
  `image/object/area`: COCO's `area` (the box area when absent), and with
  `--include_masks` `image/object/mask`: a PNG (one channel, values 0/1, the image size) per
  object, rasterized from its polygons or RLE with pycocotools (`garden-vision[coco]`).

Boxes with no width or height are skipped (as Model Garden's converter does) and counted. A
box reaching past the image by up to a pixel (rounding in COCO's files) is clipped to it;
farther, `--bbox_outside_image` decides: `error` (the default), `clip` or `skip`. Images
with no annotation are kept unless `--skip_images_without_annotations` is given. Images are
dealt round-robin, in the order of the file, into `--num_shards` shards named
`PREFIX-00000-of-0000N.tfrecord`.

Shards are written under hidden temporary names and renamed into place only once every shard
is complete, so an error or a crash never leaves a partial shard (or a partial set of new
shards) under the names a later run reads; on an error the temporary files are removed. Bad
input ends with a one-line error naming the file and the image or annotation id, and exit
status 1.

Usage:

    garden-coco-to-tfrecords --annotation_file annotations/instances_val2017.json \\
        --image_dir val2017 --output_prefix OUT/val --num_shards 8 [--include_masks]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import hashlib
import json
import math
import struct
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from garden_orbit.utils import atomic_write
from garden_vision.tools.tfrecord_shards import join as _join
from garden_vision.tools.tfrecord_shards import one_line as _one_line
from garden_vision.tools.tfrecord_shards import (
    prepare_output_prefix,
    shard_path,
    warn_stale_shards,
)

BBOX_OUTSIDE_IMAGE: tuple[str, ...] = ("error", "clip", "skip")
"""Values of `--bbox_outside_image`: what a box reaching past the image does."""

BBOX_TOLERANCE = 1.0
"""Pixels a box may reach past the image before `--bbox_outside_image` applies (it is clipped)."""

_PROG = "coco_to_tfrecords"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"


class CocoToTfrecordsError(Exception):
    """Bad input or output for `coco_to_tfrecords`; the message is one line."""


@dataclasses.dataclass(frozen=True)
class CocoObject:
    """One annotation, checked and ready to write.

    Args:
        annotation_id: The COCO annotation id.
        box: [ymin, xmin, ymax, xmax] normalized to [0, 1].
        label: The category id.
        text: The category name.
        is_crowd: COCO's `iscrowd`.
        area: COCO's `area` in pixels.
        segmentation: COCO's `segmentation` (polygons or RLE), or None.
    """

    annotation_id: Any
    box: tuple[float, float, float, float]
    label: int
    text: str
    is_crowd: int
    area: float
    segmentation: Any


@dataclasses.dataclass(frozen=True)
class CocoImage:
    """One image entry with its objects.

    Args:
        image_id: The COCO image id.
        file_name: The path relative to the image folder.
        height: The height in pixels, per the annotation file.
        width: The width in pixels, per the annotation file.
        objects: Its annotations, in file order.
        num_annotations: How many annotations the file has for it (before skipping).
    """

    image_id: int
    file_name: str
    height: int
    width: int
    objects: list[CocoObject]
    num_annotations: int


@dataclasses.dataclass(frozen=True)
class WriteSummary:
    """What `write_tfrecords` wrote.

    Args:
        shards: The shard paths, in shard order.
        num_images: Images written.
        num_objects: Objects written (crowds included).
        num_crowd: Crowd objects written.
        num_skipped_images: Images left out for having no annotation.
        num_skipped_annotations: Annotations left out (no width or height, or outside the
            image with `--bbox_outside_image skip`).
    """

    shards: list[str]
    num_images: int
    num_objects: int
    num_crowd: int
    num_skipped_images: int
    num_skipped_annotations: int


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(annotation_file: str) -> Any:
    if not tf.io.gfile.exists(annotation_file):
        raise CocoToTfrecordsError(f"--annotation_file {annotation_file!r} does not exist")
    try:
        with tf.io.gfile.GFile(annotation_file, "r") as f:
            text = f.read()
    except (tf.errors.OpError, OSError, UnicodeDecodeError) as error:
        raise CocoToTfrecordsError(
            f"cannot read annotation file {annotation_file!r}: {_one_line(error)}"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CocoToTfrecordsError(
            f"annotation file {annotation_file!r} is not valid JSON: {error.msg} at line "
            f"{error.lineno} column {error.colno}"
        ) from None


def _entry_list(dataset: dict[str, Any], key: str, annotation_file: str) -> list[Any]:
    value = dataset.get(key, [] if key == "annotations" else None)
    if not isinstance(value, list):
        raise CocoToTfrecordsError(
            f"annotation file {annotation_file!r} has no list {key!r} (COCO format)"
        )
    return value


def _load_images(entries: list[Any], annotation_file: str) -> dict[int, dict[str, Any]]:
    images: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        where = f"{annotation_file!r}: images[{index}]"
        if not isinstance(entry, dict):
            raise CocoToTfrecordsError(f"{where} is not an object")
        image_id = entry.get("id")
        if not _is_int(image_id):
            raise CocoToTfrecordsError(f"{where} has no integer 'id' (got {image_id!r})")
        where = f"{annotation_file!r}: image id {image_id}"
        if image_id in images:
            raise CocoToTfrecordsError(f"{where} appears twice in 'images'")
        file_name = entry.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise CocoToTfrecordsError(f"{where} has no 'file_name'")
        for key in ("height", "width"):
            if not _is_int(entry.get(key)) or entry[key] <= 0:
                raise CocoToTfrecordsError(
                    f"{where} has no positive integer {key!r} (got {entry.get(key)!r})"
                )
        images[image_id] = entry
    return images


def _load_categories(entries: list[Any], annotation_file: str) -> dict[int, str]:
    categories: dict[int, str] = {}
    for index, entry in enumerate(entries):
        where = f"{annotation_file!r}: categories[{index}]"
        if not isinstance(entry, dict) or not _is_int(entry.get("id")):
            raise CocoToTfrecordsError(f"{where} has no integer 'id'")
        category_id = entry["id"]
        if category_id <= 0:
            raise CocoToTfrecordsError(
                f"{where}: category id {category_id} must be above 0 (0 is background)"
            )
        if category_id in categories:
            raise CocoToTfrecordsError(f"{where}: category id {category_id} appears twice")
        name = entry.get("name")
        if not isinstance(name, str):
            raise CocoToTfrecordsError(f"{where} (id {category_id}) has no 'name'")
        categories[category_id] = name
    return categories


def _check_box(
    bbox: Any, image: Mapping[str, Any], where: str, bbox_outside_image: str
) -> tuple[float, float, float, float] | None:
    """A COCO [x, y, w, h] box -> normalized [ymin, xmin, ymax, xmax], or None to skip it."""
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise CocoToTfrecordsError(f"{where}: 'bbox' should be 4 finite numbers; got {bbox!r}")
    x, y, width, height = (float(v) for v in bbox)
    if width <= 0 or height <= 0:
        return None
    image_width, image_height = float(image["width"]), float(image["height"])
    xmin, ymin, xmax, ymax = x, y, x + width, y + height
    tolerance = BBOX_TOLERANCE
    outside = (
        xmin < -tolerance
        or ymin < -tolerance
        or xmax > image_width + tolerance
        or ymax > image_height + tolerance
    )
    if outside:
        if bbox_outside_image == "error":
            raise CocoToTfrecordsError(
                f"{where}: bbox {bbox!r} ([x, y, width, height]) reaches outside the "
                f"{int(image_width)}x{int(image_height)} image; pass --bbox_outside_image "
                "clip or skip to accept such boxes"
            )
        if bbox_outside_image == "skip":
            return None
    xmin, xmax = min(max(xmin, 0.0), image_width), min(max(xmax, 0.0), image_width)
    ymin, ymax = min(max(ymin, 0.0), image_height), min(max(ymax, 0.0), image_height)
    if xmax <= xmin or ymax <= ymin:
        return None
    return (ymin / image_height, xmin / image_width, ymax / image_height, xmax / image_width)


def load_annotations(
    annotation_file: str, include_masks: bool = False, bbox_outside_image: str = "error"
) -> tuple[list[CocoImage], int]:
    """Reads and checks a COCO annotation file.

    Args:
        annotation_file: The COCO JSON file.
        include_masks: Require a `segmentation` in every annotation kept.
        bbox_outside_image: `error`, `clip` or `skip`, for boxes reaching past the image by
            more than `BBOX_TOLERANCE` pixels.

    Returns:
        The images in file order with their objects, and the number of annotations skipped.

    Raises:
        CocoToTfrecordsError: On malformed JSON or entries (naming the file and the image or
            annotation id), an annotation of an unknown image or category, or a box outside
            its image with `bbox_outside_image='error'`.
    """
    dataset = _read_json(annotation_file)
    if not isinstance(dataset, dict):
        raise CocoToTfrecordsError(
            f"annotation file {annotation_file!r} should hold a JSON object (COCO format); got "
            f"{type(dataset).__name__}"
        )
    images = _load_images(_entry_list(dataset, "images", annotation_file), annotation_file)
    annotations = _entry_list(dataset, "annotations", annotation_file)
    categories = (
        _load_categories(_entry_list(dataset, "categories", annotation_file), annotation_file)
        if annotations or "categories" in dataset
        else {}
    )
    objects: dict[int, list[CocoObject]] = collections.defaultdict(list)
    counts: dict[int, int] = collections.Counter()
    skipped = 0
    seen_ids: set[Any] = set()
    for index, entry in enumerate(annotations):
        if not isinstance(entry, dict):
            raise CocoToTfrecordsError(
                f"{annotation_file!r}: annotations[{index}] is not an object"
            )
        annotation_id = entry.get("id", f"#{index}")
        where = f"{annotation_file!r}: annotation id {annotation_id}"
        if "id" in entry:
            if not _is_int(annotation_id) and not isinstance(annotation_id, str):
                raise CocoToTfrecordsError(
                    f"{annotation_file!r}: annotations[{index}] has an 'id' that is neither an "
                    f"integer nor a string: {annotation_id!r}"
                )
            if annotation_id in seen_ids:
                raise CocoToTfrecordsError(f"{where} appears twice in 'annotations'")
            seen_ids.add(annotation_id)
        image_id = entry.get("image_id")
        if not _is_int(image_id) or image_id not in images:
            raise CocoToTfrecordsError(f"{where}: image_id {image_id!r} is not in 'images'")
        where = f"{where} (image id {image_id})"
        category_id = entry.get("category_id")
        if not _is_int(category_id) or category_id not in categories:
            known = ", ".join(str(i) for i in sorted(categories)[:20])
            raise CocoToTfrecordsError(
                f"{where}: unknown category id {category_id!r} (known: {known})"
            )
        is_crowd = entry.get("iscrowd", 0)
        if is_crowd not in (0, 1) or isinstance(is_crowd, float):
            raise CocoToTfrecordsError(f"{where}: 'iscrowd' should be 0 or 1; got {is_crowd!r}")
        counts[image_id] += 1
        box = _check_box(entry.get("bbox"), images[image_id], where, bbox_outside_image)
        if box is None:
            skipped += 1
            continue
        area = entry.get("area")
        if area is None:
            area = float(entry["bbox"][2]) * float(entry["bbox"][3])
        elif not _is_number(area) or area < 0:
            raise CocoToTfrecordsError(f"{where}: 'area' should be a number >= 0; got {area!r}")
        segmentation = entry.get("segmentation")
        if include_masks and not segmentation:
            raise CocoToTfrecordsError(
                f"{where} has no 'segmentation', which --include_masks needs"
            )
        objects[image_id].append(
            CocoObject(
                annotation_id=annotation_id,
                box=box,
                label=category_id,
                text=categories[category_id],
                is_crowd=int(is_crowd),
                area=float(area),
                segmentation=segmentation,
            )
        )
    result = [
        CocoImage(
            image_id=image_id,
            file_name=entry["file_name"],
            height=entry["height"],
            width=entry["width"],
            objects=objects.get(image_id, []),
            num_annotations=counts.get(image_id, 0),
        )
        for image_id, entry in images.items()
    ]
    return result, skipped


def _image_size(contents: bytes, image_format: str) -> tuple[int, int]:
    if image_format == "png":
        if len(contents) < 24 or contents[12:16] != b"IHDR":
            raise ValueError("truncated PNG header")
        width, height = struct.unpack(">II", contents[16:24])
        return int(height), int(width)
    shape = tf.io.extract_jpeg_shape(contents).numpy()
    return int(shape[0]), int(shape[1])


def read_image(image_dir: str, image: CocoImage) -> tuple[bytes, str]:
    """Reads an image file and checks its format and size against the annotation file.

    Returns:
        The file's bytes and its format (`jpeg` or `png`).

    Raises:
        CocoToTfrecordsError: If the file is missing, unreadable, not JPEG or PNG, or of
            another size than the annotation file says (naming the file and the image id).
    """
    path = _join(image_dir, image.file_name)
    where = f"image file {path!r} (image id {image.image_id})"
    if not tf.io.gfile.exists(path):
        raise CocoToTfrecordsError(f"{where} does not exist")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            contents = f.read()
    except (tf.errors.OpError, OSError) as error:
        raise CocoToTfrecordsError(f"cannot read {where}: {_one_line(error)}") from None
    if contents.startswith(_JPEG_SIGNATURE):
        image_format = "jpeg"
    elif contents.startswith(_PNG_SIGNATURE):
        image_format = "png"
    else:
        raise CocoToTfrecordsError(f"{where} is not a JPEG or PNG image")
    try:
        height, width = _image_size(contents, image_format)
    except (tf.errors.OpError, ValueError, struct.error) as error:
        raise CocoToTfrecordsError(f"cannot read the size of {where}: {_one_line(error)}") from None
    if (height, width) != (image.height, image.width):
        raise CocoToTfrecordsError(
            f"{where} is {width}x{height} pixels but the annotation file says "
            f"{image.width}x{image.height} (width x height)"
        )
    return contents, image_format


def _pycocotools_mask():
    try:
        from pycocotools import mask
    except ImportError:
        raise CocoToTfrecordsError(
            '--include_masks needs pycocotools: pip install "garden-vision[coco]"'
        ) from None
    return mask


def segmentation_to_mask(segmentation: Any, height: int, width: int, where: str) -> np.ndarray:
    """Rasterizes a COCO segmentation (polygons, or RLE compressed or not) to [H, W] 0/1 uint8.

    Raises:
        CocoToTfrecordsError: On a malformed segmentation or an RLE of another size, naming
            `where`.
    """
    mask_api = _pycocotools_mask()
    try:
        if isinstance(segmentation, list):
            for polygon in segmentation:
                if (
                    not isinstance(polygon, list)
                    or len(polygon) < 6
                    or len(polygon) % 2
                    or not all(_is_number(v) for v in polygon)
                ):
                    raise CocoToTfrecordsError(
                        f"{where}: each polygon of 'segmentation' should be an even count "
                        f"(at least 6) of numbers x1, y1, x2, y2, ...; got {str(polygon)[:60]}"
                    )
            rle = mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation, dict) and "counts" in segmentation:
            size = segmentation.get("size")
            if list(size or []) != [height, width]:
                raise CocoToTfrecordsError(
                    f"{where}: RLE 'size' {size!r} is not the image's [height, width] "
                    f"[{height}, {width}]"
                )
            counts = segmentation["counts"]
            if isinstance(counts, list):
                if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != height * width:
                    raise CocoToTfrecordsError(
                        f"{where}: uncompressed RLE 'counts' should be integers >= 0 summing "
                        f"to height * width = {height * width}"
                    )
                rle = mask_api.frPyObjects(segmentation, height, width)
            elif isinstance(counts, (str, bytes)):
                rle = {"size": [height, width], "counts": counts}
            else:
                raise CocoToTfrecordsError(f"{where}: RLE 'counts' should be a list or a string")
        else:
            raise CocoToTfrecordsError(
                f"{where}: 'segmentation' should be a list of polygons or an RLE object"
            )
        with warnings.catch_warnings():  # pycocotools' NumPy 2 `copy=` deprecation notice.
            warnings.simplefilter("ignore", DeprecationWarning)
            binary = np.asarray(mask_api.decode(rle), dtype=np.uint8)
    except CocoToTfrecordsError:
        raise
    except Exception as error:  # pycocotools raises assorted errors on bad input.
        raise CocoToTfrecordsError(
            f"{where}: cannot decode 'segmentation': {_one_line(error)}"
        ) from None
    if binary.ndim == 3:
        binary = binary.max(axis=2)
    if binary.shape != (height, width):
        raise CocoToTfrecordsError(
            f"{where}: the segmentation decodes to {binary.shape}, not [{height}, {width}]"
        )
    return (binary > 0).astype(np.uint8)


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A [H, W] 0/1 mask as a one-channel PNG (values 0 and 1, as Model Garden writes them)."""
    return tf.io.encode_png(np.asarray(mask, dtype=np.uint8)[..., None]).numpy()


def make_example(
    image: CocoImage,
    encoded: bytes,
    image_format: str,
    include_masks: bool = False,
    where: str = "",
) -> tf.train.Example:
    """Builds the detection tf.Example of one image (keys in the module docstring)."""

    def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))

    def _ints(values: Sequence[int]) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    def _floats(values: Sequence[float]) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))

    objects = image.objects
    features = {
        "image/encoded": _bytes([encoded]),
        "image/format": _bytes([image_format.encode("utf-8")]),
        "image/source_id": _bytes([str(image.image_id).encode("utf-8")]),
        "image/height": _ints([image.height]),
        "image/width": _ints([image.width]),
        "image/filename": _bytes([image.file_name.encode("utf-8")]),
        "image/key/sha256": _bytes([hashlib.sha256(encoded).hexdigest().encode("utf-8")]),
        "image/object/bbox/ymin": _floats([o.box[0] for o in objects]),
        "image/object/bbox/xmin": _floats([o.box[1] for o in objects]),
        "image/object/bbox/ymax": _floats([o.box[2] for o in objects]),
        "image/object/bbox/xmax": _floats([o.box[3] for o in objects]),
        "image/object/class/label": _ints([o.label for o in objects]),
        "image/object/class/text": _bytes([o.text.encode("utf-8") for o in objects]),
        "image/object/is_crowd": _ints([o.is_crowd for o in objects]),
        "image/object/area": _floats([o.area for o in objects]),
    }
    if include_masks:
        features["image/object/mask"] = _bytes(
            [
                encode_mask_png(
                    segmentation_to_mask(
                        o.segmentation,
                        image.height,
                        image.width,
                        f"{where}annotation id {o.annotation_id} (image id {image.image_id})",
                    )
                )
                for o in objects
            ]
        )
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_tfrecords(
    annotation_file: str,
    image_dir: str,
    output_prefix: str,
    num_shards: int = 1,
    include_masks: bool = False,
    skip_images_without_annotations: bool = False,
    bbox_outside_image: str = "error",
) -> WriteSummary:
    """Writes the images of a COCO annotation file into sharded detection TFRecords.

    Args:
        annotation_file: The COCO JSON annotation file.
        image_dir: The folder its `file_name`s are relative to.
        output_prefix: The shards' path prefix (`OUT/val` writes
            `OUT/val-00000-of-0000N.tfrecord`); its folder is created if missing.
        num_shards: The number of shards, from 1 to the number of images written.
        include_masks: Add `image/object/mask` PNGs (needs pycocotools).
        skip_images_without_annotations: Leave out images without annotations (by default
            they are written with no objects).
        bbox_outside_image: `error`, `clip` or `skip` (see the module docstring).

    Returns:
        What was written.

    Raises:
        CocoToTfrecordsError: On bad input or output (the message is one line). Nothing is
            left under the shard names then, beyond what was there before.
    """
    if bbox_outside_image not in BBOX_OUTSIDE_IMAGE:
        raise CocoToTfrecordsError(
            f"--bbox_outside_image {bbox_outside_image!r} is not one of "
            f"{', '.join(BBOX_OUTSIDE_IMAGE)}"
        )
    if num_shards < 1:
        raise CocoToTfrecordsError(f"--num_shards must be at least 1; got {num_shards}")
    if not tf.io.gfile.isdir(image_dir):
        raise CocoToTfrecordsError(f"--image_dir {image_dir!r} is not a directory")
    if include_masks:
        _pycocotools_mask()
    images, skipped_annotations = load_annotations(
        annotation_file, include_masks=include_masks, bbox_outside_image=bbox_outside_image
    )
    kept = [
        image
        for image in images
        if not (skip_images_without_annotations and image.num_annotations == 0)
    ]
    if not kept:
        raise CocoToTfrecordsError(f"annotation file {annotation_file!r} leaves no image to write")
    if num_shards > len(kept):
        raise CocoToTfrecordsError(
            f"--num_shards {num_shards} is more than the {len(kept)} images to write"
        )
    prepare_output_prefix(output_prefix, CocoToTfrecordsError, "OUT/val")
    finals = [shard_path(output_prefix, k, num_shards) for k in range(num_shards)]
    where = f"{annotation_file!r}: "
    writing = ""
    try:
        # Every shard is renamed into place only once all are written; an error removes them.
        with contextlib.ExitStack() as stack:
            temporaries = [stack.enter_context(atomic_write.atomic_path(p)) for p in finals]
            for k in range(num_shards):
                writing = finals[k]
                with tf.io.TFRecordWriter(temporaries[k]) as writer:
                    for image in kept[k::num_shards]:
                        encoded, image_format = read_image(image_dir, image)
                        example = make_example(
                            image, encoded, image_format, include_masks=include_masks, where=where
                        )
                        writer.write(example.SerializeToString())
            writing = f"{output_prefix}-*"
    except BaseException as error:
        if isinstance(error, (tf.errors.OpError, OSError)):
            raise CocoToTfrecordsError(f"cannot write {writing!r}: {_one_line(error)}") from None
        raise
    objects = [o for image in kept for o in image.objects]
    return WriteSummary(
        shards=finals,
        num_images=len(kept),
        num_objects=len(objects),
        num_crowd=sum(o.is_crowd for o in objects),
        num_skipped_images=len(images) - len(kept),
        num_skipped_annotations=skipped_annotations,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Write a COCO annotation file and its images into sharded TFRecords of Model "
            "Garden detection tf.Examples."
        ),
    )
    parser.add_argument(
        "--annotation_file",
        "--object_annotations_file",
        dest="annotation_file",
        required=True,
        help="COCO JSON annotation file (images, annotations, categories).",
    )
    parser.add_argument(
        "--image_dir", required=True, help="Folder the images' file_name entries are in."
    )
    parser.add_argument(
        "--output_prefix",
        "--output_file_prefix",
        dest="output_prefix",
        required=True,
        help="Shard path prefix: OUT/val writes OUT/val-00000-of-0000N.tfrecord.",
    )
    parser.add_argument("--num_shards", type=int, default=1, help="Number of shards.")
    parser.add_argument(
        "--include_masks",
        action="store_true",
        help="Add a PNG instance mask per object (image/object/mask); needs pycocotools.",
    )
    parser.add_argument(
        "--skip_images_without_annotations",
        action="store_true",
        help="Leave out images with no annotation (by default they are kept, with no objects).",
    )
    parser.add_argument(
        "--bbox_outside_image",
        choices=BBOX_OUTSIDE_IMAGE,
        default="error",
        help=f"What a box reaching more than {BBOX_TOLERANCE:g} pixel past its image does: "
        "stop with an error, clip it to the image, or skip it.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 on success, 1 on bad input).

    Args:
        argv: The arguments without the program name; None reads `sys.argv[1:]`. Usage
            errors exit through argparse with status 2, as usual.

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    try:
        summary = write_tfrecords(
            annotation_file=args.annotation_file,
            image_dir=args.image_dir,
            output_prefix=args.output_prefix,
            num_shards=args.num_shards,
            include_masks=args.include_masks,
            skip_images_without_annotations=args.skip_images_without_annotations,
            bbox_outside_image=args.bbox_outside_image,
        )
    except CocoToTfrecordsError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    warn_stale_shards(_PROG, args.output_prefix, summary.shards)
    skipped = []
    if summary.num_skipped_images:
        skipped.append(f"{summary.num_skipped_images} images without annotations")
    if summary.num_skipped_annotations:
        skipped.append(f"{summary.num_skipped_annotations} annotations with empty or outside boxes")
    print(
        f"wrote {summary.num_images} images ({summary.num_objects} objects, "
        f"{summary.num_crowd} crowd) into {len(summary.shards)} shards "
        f"{summary.shards[0]} ..." + (f"; skipped {' and '.join(skipped)}" if skipped else "")
    )
    return 0


def run() -> int:
    """The `garden-coco-to-tfrecords` console command: `main` on `sys.argv`."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
