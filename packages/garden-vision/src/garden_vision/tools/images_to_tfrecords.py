"""Writes a folder of labelled images into sharded TFRecords of classification tf.Examples.

The input folder holds one sub-folder per class (searched recursively for `.jpg`, `.jpeg`,
`.png`, `.bmp` and `.gif` files; other files and hidden entries are skipped). Classes sorted
by name get the ids 0..n-1. Images are shuffled with a fixed seed and dealt round-robin into
`--num_shards` files named `PREFIX-00000-of-0000N.tfrecord`, and the class names are written
one per line, in id order, to a label file (by default `labels.txt` beside the shards), which
`LabelMapExampleDecoder` reads.

Each record is a tf.Example in Model Garden's classification layout:

* `image/encoded`: the image bytes (bytes), `image/format`: `jpeg` or `png` (bytes),
* `image/class/label`: the class id (int64), `image/class/text`: the class name (bytes),
* `image/height`, `image/width`: the image size in pixels (int64),
* `image/source_id`: the image's path relative to the input folder (bytes), and
  `image/key/sha256`: the hex SHA-256 of `image/encoded` (bytes).

JPEG and PNG files are stored as they are unless `--image_format` asks for one format;
BMP and GIF files (first frame) are re-encoded as PNG. Every image is decoded once to check
it and to read its size. Model Garden's classification parser decodes JPEG only by default
(`decode_jpeg_only: true`): for PNG records set it to false, or pass `--image_format jpeg`.

Shards are written under hidden temporary names and renamed into place only after every
shard is complete, so an error or a crash never leaves a partial shard (or a partial set of
new shards) under the names a later run reads; on an error the temporary files are removed.
Bad input ends with a one-line error naming what is wrong and where, and exit status 1.

Segmentation mode (`--masks_dir DIR`): `--image_dir` is a folder of images (searched
recursively) and `--masks_dir` holds one PNG mask per image at the same relative path with
the extension `.png` (`images/a/x.jpg` pairs with `masks/a/x.png`), whose pixel values are
the class ids. Records hold Model Garden's segmentation layout: `image/encoded`,
`image/format`, `image/height`, `image/width`, `image/source_id`, `image/key/sha256` as
above, plus `image/segmentation/class/encoded` (a single-channel 8-bit PNG of class ids)
and `image/segmentation/class/format` (`png`); no label file is written. Grayscale 8-bit
masks are stored as they are; palette PNGs (PASCAL VOC's `SegmentationClass`) are stored
as their palette indices, which are the labels; 16-bit and 1/2/4-bit grayscale masks are
rewritten as 8-bit ones with the same values. An image without a mask, a mask that is not a
PNG, has colour (RGB) or alpha channels, differs in size from its image, or holds values
above 255 ends with a one-line error naming the file.

Usage:

    python -m garden_vision.tools.images_to_tfrecords --image_dir DIR \\
        --output_prefix OUT/train --num_shards 4 [--label_file OUT/labels.txt]
    python -m garden_vision.tools.images_to_tfrecords --image_dir JPEGImages \\
        --masks_dir SegmentationClass --output_prefix OUT/train --num_shards 4
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import posixpath
import random
import struct
import sys
import zlib
from collections.abc import Sequence

import tensorflow as tf

from garden_orbit.utils import atomic_write
from garden_vision.tools.tfrecord_shards import join as _join
from garden_vision.tools.tfrecord_shards import one_line as _one_line
from garden_vision.tools.tfrecord_shards import (
    prepare_output_prefix,
    shard_path,
    warn_stale_shards,
)

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
"""File-name endings (matched case-insensitively) that are read as images."""

IMAGE_FORMATS: tuple[str, ...] = ("keep", "jpeg", "png")
"""Values of `--image_format`."""

_PROG = "images_to_tfrecords"
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
_JPEG_QUALITY = 95
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types (the IHDR byte) and what they hold.
_PNG_GRAYSCALE, _PNG_PALETTE = 0, 3
_PNG_COLOUR_TYPES = {2: "RGB", 4: "grayscale with alpha", 6: "RGBA"}
MASK_EXTENSION = ".png"
"""The file-name ending of masks in `--masks_dir`."""


class ImagesToTfrecordsError(Exception):
    """Bad input or output for `images_to_tfrecords`; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """One input image.

    Args:
        path: The file's full path.
        source_id: The path relative to the input folder, with `/` separators.
        label: The class id.
        text: The class name.
    """

    path: str
    source_id: str
    label: int
    text: str


@dataclasses.dataclass(frozen=True)
class WriteSummary:
    """What `write_tfrecords` wrote.

    Args:
        shards: The shard paths, in shard order.
        label_file: The path of the class-name file.
        class_names: The class names, in id order.
        num_images: The number of images written.
        num_skipped: The number of files skipped because they are not images by name.
    """

    shards: list[str]
    label_file: str
    class_names: list[str]
    num_images: int
    num_skipped: int


def _visible(name: str) -> bool:
    return not name.rstrip("/").startswith(".")


def find_images(image_dir: str) -> tuple[list[str], list[ImageFile], int]:
    """Lists the classes and images of `image_dir`, sorted by class and path.

    Args:
        image_dir: A folder with one sub-folder of images per class.

    Returns:
        The class names sorted (position = id), the images, and the number of files that
        were skipped because their names do not end in an image extension.

    Raises:
        ImagesToTfrecordsError: If the folder is missing, is not a folder, has no class
            sub-folders, or a class sub-folder holds no images.
    """
    if not tf.io.gfile.exists(image_dir):
        raise ImagesToTfrecordsError(f"--image_dir {image_dir!r} does not exist")
    if not tf.io.gfile.isdir(image_dir):
        raise ImagesToTfrecordsError(f"--image_dir {image_dir!r} is not a directory")
    entries = sorted(e.rstrip("/") for e in tf.io.gfile.listdir(image_dir) if _visible(e))
    class_names = [e for e in entries if tf.io.gfile.isdir(_join(image_dir, e))]
    if not class_names:
        loose = len(entries)
        raise ImagesToTfrecordsError(
            f"--image_dir {image_dir!r} has no class sub-folders ({loose} other entries); "
            "put each class's images in a sub-folder named after the class"
        )
    images: list[ImageFile] = []
    skipped = 0
    for label, name in enumerate(class_names):
        class_dir = _join(image_dir, name)
        found: list[ImageFile] = []
        for directory, subdirs, files in tf.io.gfile.walk(class_dir):
            subdirs[:] = sorted(d for d in subdirs if _visible(d))
            relative_dir = posixpath.relpath(directory.replace("\\", "/"), image_dir)
            for file_name in sorted(f for f in files if _visible(f)):
                if not file_name.lower().endswith(IMAGE_EXTENSIONS):
                    skipped += 1
                    continue
                found.append(
                    ImageFile(
                        path=_join(directory, file_name),
                        source_id=posixpath.join(relative_dir, file_name),
                        label=label,
                        text=name,
                    )
                )
        if not found:
            raise ImagesToTfrecordsError(
                f"class folder {class_dir!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        images.extend(sorted(found, key=lambda image: image.source_id))
    return class_names, images, skipped


def _sniff_format(contents: bytes) -> str | None:
    for signature, image_format in _SIGNATURES:
        if contents.startswith(signature):
            return image_format
    return None


def encode_image(image: ImageFile, image_format: str = "keep") -> tuple[bytes, str, int, int]:
    """Reads, checks and (if needed) re-encodes one image.

    Args:
        image: The image file.
        image_format: `keep` stores JPEG and PNG files as they are (and BMP and GIF files as
            PNG); `jpeg` or `png` stores every image in that format.

    Returns:
        The bytes to store, their format (`jpeg` or `png`), and the height and width.

    Raises:
        ImagesToTfrecordsError: If the file cannot be read or decoded, naming the file.
    """
    try:
        with tf.io.gfile.GFile(image.path, "rb") as f:
            contents = f.read()
    except (tf.errors.OpError, OSError) as error:
        raise ImagesToTfrecordsError(
            f"cannot read image file {image.path!r}: {_one_line(error)}"
        ) from None
    found = _sniff_format(contents)
    if found is None:
        raise ImagesToTfrecordsError(
            f"cannot decode image file {image.path!r}: not a JPEG, PNG, GIF or BMP image"
        )
    try:
        pixels = tf.io.decode_image(contents, channels=0, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        raise ImagesToTfrecordsError(
            f"cannot decode image file {image.path!r}: {_one_line(error)}"
        ) from None
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    target = image_format
    if target == "keep":
        target = found if found in ("jpeg", "png") else "png"
    if target == found:
        return contents, found, height, width
    if target == "jpeg":
        if pixels.shape[-1] in (2, 4):  # JPEG has no alpha: drop it.
            pixels = pixels[..., : pixels.shape[-1] - 1]
        encoded = tf.io.encode_jpeg(pixels, quality=_JPEG_QUALITY).numpy()
    else:
        encoded = tf.io.encode_png(pixels).numpy()
    return encoded, target, height, width


def make_example(
    image: ImageFile, encoded: bytes, image_format: str, height: int, width: int
) -> tf.train.Example:
    """Builds the classification tf.Example of one image (keys in the module docstring)."""

    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": _bytes(encoded),
        "image/format": _bytes(image_format.encode("utf-8")),
        "image/class/label": _int(image.label),
        "image/class/text": _bytes(image.text.encode("utf-8")),
        "image/height": _int(height),
        "image/width": _int(width),
        "image/source_id": _bytes(image.source_id.encode("utf-8")),
        "image/key/sha256": _bytes(hashlib.sha256(encoded).hexdigest().encode("utf-8")),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_tfrecords(
    image_dir: str,
    output_prefix: str,
    num_shards: int = 1,
    label_file: str | None = None,
    seed: int = 0,
    image_format: str = "keep",
) -> WriteSummary:
    """Writes the images of `image_dir` into sharded TFRecords and their class names to a file.

    Args:
        image_dir: A folder with one sub-folder of images per class.
        output_prefix: The shards' path prefix (`OUT/train` writes
            `OUT/train-00000-of-0000N.tfrecord`); its folder is created if missing.
        num_shards: The number of shards, from 1 to the number of images.
        label_file: Where to write the class names, one per line in id order; None writes
            `labels.txt` in the folder of `output_prefix`.
        seed: The seed of the shuffle that spreads images over shards.
        image_format: `keep`, `jpeg` or `png`; see `encode_image`.

    Returns:
        What was written.

    Raises:
        ImagesToTfrecordsError: On bad input or output (the message is one line). Nothing
            is left under the shard or label-file names then, beyond what was there before.
    """
    if image_format not in IMAGE_FORMATS:
        raise ImagesToTfrecordsError(
            f"--image_format {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}"
        )
    if num_shards < 1:
        raise ImagesToTfrecordsError(f"--num_shards must be at least 1; got {num_shards}")
    class_names, images, skipped = find_images(image_dir)
    if num_shards > len(images):
        raise ImagesToTfrecordsError(
            f"--num_shards {num_shards} is more than the {len(images)} images in {image_dir!r}"
        )
    directory = prepare_output_prefix(output_prefix, ImagesToTfrecordsError, "OUT/train")
    if label_file is None:
        label_file = _join(directory, "labels.txt")

    label_directory = posixpath.dirname(label_file)
    if label_directory and not tf.io.gfile.isdir(label_directory):
        try:
            tf.io.gfile.makedirs(label_directory)
        except (tf.errors.OpError, OSError) as error:
            raise ImagesToTfrecordsError(
                f"--label_file {label_file!r}: cannot create {label_directory!r}: "
                f"{_one_line(error)}"
            ) from None

    order = list(images)
    random.Random(seed).shuffle(order)
    finals = [shard_path(output_prefix, k, num_shards) for k in range(num_shards)]
    finals.append(label_file)
    writing = ""
    try:
        # Every file is renamed into place only once all are written; an error removes them.
        with contextlib.ExitStack() as stack:
            temporaries = [stack.enter_context(atomic_write.atomic_path(p)) for p in finals]
            for k in range(num_shards):
                writing = finals[k]
                with tf.io.TFRecordWriter(temporaries[k]) as writer:
                    for image in order[k::num_shards]:
                        example = make_example(image, *encode_image(image, image_format))
                        writer.write(example.SerializeToString())
            writing = label_file
            with tf.io.gfile.GFile(temporaries[-1], "w") as f:
                f.write("".join(f"{name}\n" for name in class_names))
            writing = f"{output_prefix}-*"
    except BaseException as error:
        if isinstance(error, (tf.errors.OpError, OSError)):
            raise ImagesToTfrecordsError(f"cannot write {writing!r}: {_one_line(error)}") from None
        raise
    return WriteSummary(
        shards=finals[:-1],
        label_file=label_file,
        class_names=class_names,
        num_images=len(images),
        num_skipped=skipped,
    )


@dataclasses.dataclass(frozen=True)
class SegmentationWriteSummary:
    """What `write_segmentation_tfrecords` wrote.

    Args:
        shards: The shard paths, in shard order.
        num_images: The number of image and mask pairs written.
        num_skipped: The number of files skipped because they are not images by name.
    """

    shards: list[str]
    num_images: int
    num_skipped: int


def _inside(path: str, folder: str) -> bool:
    path, folder = (posixpath.normpath(p.replace("\\", "/")) for p in (path, folder))
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def find_image_mask_pairs(
    image_dir: str, masks_dir: str
) -> tuple[list[tuple[ImageFile, str]], int]:
    """Lists the images of `image_dir` (recursively) with their masks in `masks_dir`.

    Args:
        image_dir: A folder of images (sub-folders allowed).
        masks_dir: A folder with `<relative path without extension>.png` for every image.

    Returns:
        `(image, mask path)` pairs sorted by the image's relative path (its `source_id`;
        `label` is -1), and the number of files skipped because their names do not end in
        an image extension. A `masks_dir` inside `image_dir` is not searched for images.

    Raises:
        ImagesToTfrecordsError: If a folder is missing or not a folder, `image_dir` holds no
            images, two images share a path without extension, or an image has no mask.
    """
    for flag, folder in (("--image_dir", image_dir), ("--masks_dir", masks_dir)):
        if not tf.io.gfile.exists(folder):
            raise ImagesToTfrecordsError(f"{flag} {folder!r} does not exist")
        if not tf.io.gfile.isdir(folder):
            raise ImagesToTfrecordsError(f"{flag} {folder!r} is not a directory")
    pairs: list[tuple[ImageFile, str]] = []
    by_stem: dict[str, str] = {}
    skipped = 0
    for directory, subdirs, files in tf.io.gfile.walk(image_dir):
        subdirs[:] = sorted(
            d
            for d in subdirs
            if _visible(d) and not _inside(_join(directory, d.rstrip("/")), masks_dir)
        )
        relative_dir = posixpath.relpath(directory.replace("\\", "/"), image_dir)
        for file_name in sorted(f for f in files if _visible(f)):
            if not file_name.lower().endswith(IMAGE_EXTENSIONS):
                skipped += 1
                continue
            source_id = posixpath.normpath(posixpath.join(relative_dir, file_name))
            stem = posixpath.splitext(source_id)[0]
            if stem in by_stem:
                raise ImagesToTfrecordsError(
                    f"images {by_stem[stem]!r} and {source_id!r} in {image_dir!r} would share "
                    f"the mask {stem + MASK_EXTENSION!r}: keep one of them"
                )
            by_stem[stem] = source_id
            path = _join(directory, file_name)
            mask_path = _join(masks_dir, stem + MASK_EXTENSION)
            if not tf.io.gfile.exists(mask_path):
                raise ImagesToTfrecordsError(f"image {path!r} has no mask: expected {mask_path!r}")
            pairs.append((ImageFile(path=path, source_id=source_id, label=-1, text=""), mask_path))
    if not pairs:
        raise ImagesToTfrecordsError(
            f"--image_dir {image_dir!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
        )
    pairs.sort(key=lambda pair: pair[0].source_id)
    return pairs, skipped


def _png_chunks(contents: bytes) -> list[tuple[bytes, bytes]]:
    """The `(type, data)` chunks of a PNG file (CRCs are checked by the decoder)."""
    chunks, position = [], len(_PNG_SIGNATURE)
    while position + 8 <= len(contents):
        (length,) = struct.unpack(">I", contents[position : position + 4])
        kind = contents[position + 4 : position + 8]
        chunks.append((kind, contents[position + 8 : position + 8 + length]))
        position += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _with_index_palette(contents: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """The PNG with its palette replaced by grays whose level is the entry's index."""
    parts = [_PNG_SIGNATURE]
    for kind, data in chunks:
        if kind == b"PLTE":
            data = bytes(level for index in range(len(data) // 3) for level in (index,) * 3)
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        parts.append(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc))
    return b"".join(parts)


def encode_mask(mask_path: str, image_path: str, height: int, width: int) -> bytes:
    """Reads and checks one mask; returns it as a single-channel 8-bit PNG of class ids.

    Args:
        mask_path: The PNG mask.
        image_path: Its image (named in errors).
        height: The image's height; the mask must match it.
        width: The image's width.

    Raises:
        ImagesToTfrecordsError: If the mask cannot be read or decoded, is not a PNG, is not
            single-channel (grayscale or palette), holds values above 255, or differs in
            size from its image; the message names the file.
    """
    try:
        with tf.io.gfile.GFile(mask_path, "rb") as f:
            contents = f.read()
    except (tf.errors.OpError, OSError) as error:
        raise ImagesToTfrecordsError(
            f"cannot read mask file {mask_path!r}: {_one_line(error)}"
        ) from None
    chunks = _png_chunks(contents) if contents.startswith(_PNG_SIGNATURE) else []
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) < 10:
        raise ImagesToTfrecordsError(f"mask file {mask_path!r} is not a PNG image")
    mask_width, mask_height, bit_depth, colour_type = struct.unpack(">IIBB", chunks[0][1][:10])
    if colour_type not in (_PNG_GRAYSCALE, _PNG_PALETTE):
        kind = _PNG_COLOUR_TYPES.get(colour_type, f"colour type {colour_type}")
        raise ImagesToTfrecordsError(
            f"mask file {mask_path!r} is not single-channel ({kind} PNG): masks must be "
            "grayscale or palette PNGs of class ids"
        )
    if (mask_height, mask_width) != (height, width):
        raise ImagesToTfrecordsError(
            f"mask file {mask_path!r} is {mask_height}x{mask_width} (height x width) but its "
            f"image {image_path!r} is {height}x{width}"
        )
    try:
        if colour_type == _PNG_PALETTE:
            indexed = _with_index_palette(contents, chunks)
            labels = tf.io.decode_png(indexed, channels=3)[..., :1]
        elif bit_depth == 16:
            labels = tf.io.decode_png(contents, channels=1, dtype=tf.uint16)
            if int(tf.reduce_max(labels)) > 255:
                raise ImagesToTfrecordsError(
                    f"mask file {mask_path!r} holds values above 255: class ids must fit in 8 bits"
                )
            labels = tf.cast(labels, tf.uint8)
        else:
            labels = tf.io.decode_png(contents, channels=1)
            if bit_depth == 8:
                return contents
            # Decoding scales 1/2/4-bit levels to 0-255; undo it to get the stored values.
            labels = labels // (255 // (2**bit_depth - 1))
    except (tf.errors.OpError, ValueError) as error:
        raise ImagesToTfrecordsError(
            f"cannot decode mask file {mask_path!r}: {_one_line(error)}"
        ) from None
    return tf.io.encode_png(labels).numpy()


def make_segmentation_example(
    image: ImageFile,
    encoded: bytes,
    image_format: str,
    height: int,
    width: int,
    mask_png: bytes,
) -> tf.train.Example:
    """Builds the segmentation tf.Example of one image and its mask (keys in the docstring)."""

    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": _bytes(encoded),
        "image/format": _bytes(image_format.encode("utf-8")),
        "image/height": _int(height),
        "image/width": _int(width),
        "image/source_id": _bytes(image.source_id.encode("utf-8")),
        "image/key/sha256": _bytes(hashlib.sha256(encoded).hexdigest().encode("utf-8")),
        "image/segmentation/class/encoded": _bytes(mask_png),
        "image/segmentation/class/format": _bytes(b"png"),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_segmentation_tfrecords(
    image_dir: str,
    masks_dir: str,
    output_prefix: str,
    num_shards: int = 1,
    seed: int = 0,
    image_format: str = "keep",
) -> SegmentationWriteSummary:
    """Writes the images of `image_dir` with their masks into sharded TFRecords.

    Args:
        image_dir: A folder of images (sub-folders allowed).
        masks_dir: A folder of PNG masks at the images' relative paths, ending in `.png`.
        output_prefix: The shards' path prefix (`OUT/train` writes
            `OUT/train-00000-of-0000N.tfrecord`); its folder is created if missing.
        num_shards: The number of shards, from 1 to the number of images.
        seed: The seed of the shuffle that spreads images over shards.
        image_format: `keep`, `jpeg` or `png` for the images; see `encode_image`.

    Returns:
        What was written.

    Raises:
        ImagesToTfrecordsError: On bad input or output (the message is one line). Nothing
            is left under the shard names then, beyond what was there before.
    """
    if image_format not in IMAGE_FORMATS:
        raise ImagesToTfrecordsError(
            f"--image_format {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}"
        )
    if num_shards < 1:
        raise ImagesToTfrecordsError(f"--num_shards must be at least 1; got {num_shards}")
    pairs, skipped = find_image_mask_pairs(image_dir, masks_dir)
    if num_shards > len(pairs):
        raise ImagesToTfrecordsError(
            f"--num_shards {num_shards} is more than the {len(pairs)} images in {image_dir!r}"
        )
    prepare_output_prefix(output_prefix, ImagesToTfrecordsError, "OUT/train")
    order = list(pairs)
    random.Random(seed).shuffle(order)
    finals = [shard_path(output_prefix, k, num_shards) for k in range(num_shards)]
    writing = ""
    try:
        # Every shard is renamed into place only once all are written; an error removes them.
        with contextlib.ExitStack() as stack:
            temporaries = [stack.enter_context(atomic_write.atomic_path(p)) for p in finals]
            for k in range(num_shards):
                writing = finals[k]
                with tf.io.TFRecordWriter(temporaries[k]) as writer:
                    for image, mask_path in order[k::num_shards]:
                        encoded, found, height, width = encode_image(image, image_format)
                        mask = encode_mask(mask_path, image.path, height, width)
                        example = make_segmentation_example(
                            image, encoded, found, height, width, mask
                        )
                        writer.write(example.SerializeToString())
            writing = f"{output_prefix}-*"
    except BaseException as error:
        if isinstance(error, (tf.errors.OpError, OSError)):
            raise ImagesToTfrecordsError(f"cannot write {writing!r}: {_one_line(error)}") from None
        raise
    return SegmentationWriteSummary(shards=finals, num_images=len(pairs), num_skipped=skipped)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Write a folder of labelled images (one sub-folder per class) into sharded "
            "TFRecords of Model Garden classification tf.Examples, or with --masks_dir a "
            "folder of images and their PNG masks into segmentation tf.Examples."
        ),
    )
    parser.add_argument(
        "--image_dir",
        required=True,
        help="Folder with one sub-folder of images per class (with --masks_dir: a folder of "
        "images).",
    )
    parser.add_argument(
        "--masks_dir",
        default=None,
        help="Write segmentation records: the folder of PNG class-id masks, one per image at "
        "the image's relative path with the extension .png.",
    )
    parser.add_argument(
        "--output_prefix",
        required=True,
        help="Shard path prefix: OUT/train writes OUT/train-00000-of-0000N.tfrecord.",
    )
    parser.add_argument("--num_shards", type=int, default=1, help="Number of shards.")
    parser.add_argument(
        "--label_file",
        default=None,
        help="Where to write the class names, one per line in id order "
        "(default: labels.txt beside the shards).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the shuffle across shards.")
    parser.add_argument(
        "--image_format",
        choices=IMAGE_FORMATS,
        default="keep",
        help="keep: JPEG and PNG as they are (BMP, GIF as PNG); jpeg or png: re-encode all.",
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
    if args.masks_dir is not None:
        return _main_segmentation(args)
    try:
        summary = write_tfrecords(
            image_dir=args.image_dir,
            output_prefix=args.output_prefix,
            num_shards=args.num_shards,
            label_file=args.label_file,
            seed=args.seed,
            image_format=args.image_format,
        )
    except ImagesToTfrecordsError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    warn_stale_shards(_PROG, args.output_prefix, summary.shards)
    skipped = f"; skipped {summary.num_skipped} non-image files" if summary.num_skipped else ""
    print(
        f"wrote {summary.num_images} images of {len(summary.class_names)} classes into "
        f"{len(summary.shards)} shards {shard_path(args.output_prefix, 0, len(summary.shards))}"
        f" ...; class names in {summary.label_file}{skipped}"
    )
    return 0


def _main_segmentation(args: argparse.Namespace) -> int:
    """`main` for `--masks_dir`: image and mask pairs into segmentation records."""
    try:
        if args.label_file is not None:
            raise ImagesToTfrecordsError(
                "--label_file is for classification records; segmentation records "
                "(--masks_dir) carry their classes in the masks"
            )
        summary = write_segmentation_tfrecords(
            image_dir=args.image_dir,
            masks_dir=args.masks_dir,
            output_prefix=args.output_prefix,
            num_shards=args.num_shards,
            seed=args.seed,
            image_format=args.image_format,
        )
    except ImagesToTfrecordsError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    warn_stale_shards(_PROG, args.output_prefix, summary.shards)
    skipped = f"; skipped {summary.num_skipped} non-image files" if summary.num_skipped else ""
    print(
        f"wrote {summary.num_images} images with their masks into {len(summary.shards)} "
        f"shards {shard_path(args.output_prefix, 0, len(summary.shards))} ...{skipped}"
    )
    return 0


def run() -> int:
    """The `garden-images-to-tfrecords` console command: `main` on `sys.argv`."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
