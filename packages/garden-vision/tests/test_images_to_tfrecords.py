"""images_to_tfrecords: a folder of labelled images round-trips through sharded TFRecords, and
bad input ends with a one-line error, a non-zero exit and no partial files."""

import hashlib
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.tools import images_to_tfrecords as tool

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/class/label": tf.io.FixedLenFeature((), tf.int64),
    "image/class/text": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/source_id": tf.io.FixedLenFeature((), tf.string),
    "image/key/sha256": tf.io.FixedLenFeature((), tf.string),
}
# class -> [(file name, format, height, width)]
LAYOUT = {
    "cat": [("a.png", "png", 5, 7), ("b.PNG", "png", 9, 4), ("c.jpg", "jpeg", 8, 8)],
    "dog": [("d.jpeg", "jpeg", 6, 10), ("nested/e.png", "png", 3, 3)],
    "emu": [("f.jpg", "jpeg", 12, 5), ("g.png", "png", 4, 6), ("h.jpg", "jpeg", 7, 9)],
}


def _write_image(path, image_format, height, width, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    if image_format == "png":
        data = tf.io.encode_png(pixels).numpy()
    else:
        data = tf.io.encode_jpeg(pixels, quality=90).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return pixels, data


@pytest.fixture
def image_dir(tmp_path):
    """A small labelled folder, plus files the tool must skip."""
    root = tmp_path / "images"
    expected = {}
    seed = 0
    for class_name, files in LAYOUT.items():
        for name, image_format, height, width in files:
            seed += 1
            pixels, data = _write_image(root / class_name / name, image_format, height, width, seed)
            expected[f"{class_name}/{name}"] = (class_name, image_format, pixels, data)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\0\1")
    (root / ".hidden_class").mkdir()
    (root / "README").write_text("a loose file beside the class folders")
    return root, expected


def _read_records(paths):
    records = []
    for record in tf.data.TFRecordDataset([str(p) for p in paths]):
        parsed = tf.io.parse_single_example(record, FEATURES)
        records.append({k: v.numpy() for k, v in parsed.items()})
    return records


def _run(capsys, *args):
    code = tool.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_round_trip_keeps_every_image_once_with_its_label(image_dir, tmp_path, capsys):
    root, expected = image_dir
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        capsys, "--image_dir", root, "--output_prefix", out / "train", "--num_shards", 3
    )
    assert code == 0, stderr
    assert "wrote 8 images of 3 classes into 3 shards" in stdout
    assert "skipped 1 non-image files" in stdout
    shards = [out / f"train-{k:05d}-of-00003.tfrecord" for k in range(3)]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(p.name for p in shards), "labels.txt"]
    )
    assert (out / "labels.txt").read_text() == "cat\ndog\nemu\n"

    per_shard = [len(_read_records([p])) for p in shards]
    assert sorted(per_shard) == [2, 3, 3]
    records = _read_records(shards)
    source_ids = [r["image/source_id"].decode() for r in records]
    assert sorted(source_ids) == sorted(expected)  # Every image exactly once.
    class_names = ["cat", "dog", "emu"]
    for record, source_id in zip(records, source_ids, strict=True):
        class_name, image_format, pixels, data = expected[source_id]
        assert record["image/class/text"].decode() == class_name
        assert record["image/class/label"] == class_names.index(class_name)
        assert record["image/format"].decode() == image_format
        assert (record["image/height"], record["image/width"]) == pixels.shape[:2]
        assert record["image/encoded"] == data  # JPEG and PNG are stored as they are.
        expected_sha = hashlib.sha256(data).hexdigest().encode()
        assert record["image/key/sha256"] == expected_sha
        decoded = tf.io.decode_image(record["image/encoded"], channels=3).numpy()
        if image_format == "png":
            np.testing.assert_array_equal(decoded, pixels)
    # Shuffled across shards: not in sorted order.
    assert source_ids != sorted(source_ids)


def test_same_seed_gives_identical_shards_and_another_seed_another_order(image_dir, tmp_path):
    root, _ = image_dir
    for name, seed in (("a", 0), ("b", 0), ("c", 7)):
        argv = ["--image_dir", str(root), "--output_prefix", str(tmp_path / name / "train")]
        assert tool.main([*argv, "--num_shards", "2", "--seed", str(seed)]) == 0
    shard = "train-00000-of-00002.tfrecord"
    assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()
    order = {
        name: [
            r["image/source_id"]
            for r in _read_records(sorted((tmp_path / name).glob("*.tfrecord")))
        ]
        for name in ("a", "c")
    }
    assert order["a"] != order["c"]
    assert sorted(order["a"]) == sorted(order["c"])


def test_image_format_jpeg_reencodes_and_label_file_goes_where_asked(image_dir, tmp_path):
    root, expected = image_dir
    label_file = tmp_path / "meta" / "classes.txt"
    argv = ["--image_dir", str(root), "--output_prefix", str(tmp_path / "out" / "val")]
    assert tool.main([*argv, "--image_format", "jpeg", "--label_file", str(label_file)]) == 0
    assert label_file.read_text() == "cat\ndog\nemu\n"
    assert not (tmp_path / "out" / "labels.txt").exists()
    records = _read_records([tmp_path / "out" / "val-00000-of-00001.tfrecord"])
    assert len(records) == len(expected)
    for record in records:
        assert record["image/format"] == b"jpeg"
        pixels = tf.io.decode_jpeg(record["image/encoded"]).numpy()
        assert pixels.shape[:2] == (record["image/height"], record["image/width"])


def _assert_one_line_error(code, stderr, *fragments):
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("images_to_tfrecords: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_or_wrong_image_dir_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "out" / "train"
    missing = tmp_path / "nope"
    code, _, stderr = _run(capsys, "--image_dir", missing, "--output_prefix", out)
    _assert_one_line_error(code, stderr, str(missing), "does not exist")

    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    code, _, stderr = _run(capsys, "--image_dir", a_file, "--output_prefix", out)
    _assert_one_line_error(code, stderr, str(a_file), "not a directory")

    flat = tmp_path / "flat"
    flat.mkdir()
    _write_image(flat / "loose.png", "png", 4, 4, 0)
    code, _, stderr = _run(capsys, "--image_dir", flat, "--output_prefix", out)
    _assert_one_line_error(code, stderr, str(flat), "no class sub-folders")

    (flat / "empty_class").mkdir()
    code, _, stderr = _run(capsys, "--image_dir", flat, "--output_prefix", out)
    _assert_one_line_error(code, stderr, "empty_class", "holds no images")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("contents", "reason"),
    [
        (b"this is not an image", "not a JPEG, PNG, GIF or BMP image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "cannot decode"),
        (b"\xff\xd8\xff\xe0" + b"\x13" * 40, "cannot decode"),
    ],
    ids=["text", "broken-png", "broken-jpeg"],
)
def test_undecodable_image_names_the_file_and_leaves_no_partial_files(
    image_dir, tmp_path, capsys, contents, reason
):
    root, _ = image_dir
    out = tmp_path / "out"
    # A complete earlier run: its shards must survive the failed run untouched.
    assert tool.main(["--image_dir", str(root), "--output_prefix", str(out / "train")]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    bad = root / "emu" / "zz_broken.png"
    bad.write_bytes(contents)
    code, _, stderr = _run(
        capsys, "--image_dir", root, "--output_prefix", out / "train", "--num_shards", 1
    )
    _assert_one_line_error(code, stderr, str(bad), reason)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]

    # With several shards the bad image may come after complete shards: none are kept.
    code, _, stderr = _run(
        capsys, "--image_dir", root, "--output_prefix", out / "many", "--num_shards", 4
    )
    _assert_one_line_error(code, stderr, str(bad))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_unreadable_image_names_the_file(image_dir, tmp_path, capsys):
    root, _ = image_dir
    bad = root / "cat" / "broken_link.jpg"
    bad.symlink_to(tmp_path / "does-not-exist.jpg")
    out = tmp_path / "out"
    code, _, stderr = _run(capsys, "--image_dir", root, "--output_prefix", out / "train")
    _assert_one_line_error(code, stderr, str(bad), "cannot read image file")
    assert list(out.iterdir()) == []


def test_bad_shard_counts_and_prefixes_are_one_line_errors(image_dir, tmp_path, capsys):
    root, _ = image_dir
    out = tmp_path / "out" / "train"
    code, _, stderr = _run(capsys, "--image_dir", root, "--output_prefix", out, "--num_shards", 0)
    _assert_one_line_error(code, stderr, "--num_shards must be at least 1")
    code, _, stderr = _run(capsys, "--image_dir", root, "--output_prefix", out, "--num_shards", 9)
    _assert_one_line_error(code, stderr, "--num_shards 9 is more than the 8 images")
    code, _, stderr = _run(capsys, "--image_dir", root, "--output_prefix", f"{tmp_path}/")
    _assert_one_line_error(code, stderr, "--output_prefix")
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--image_dir", str(root)])  # argparse: --output_prefix is required.
    assert exit_info.value.code == 2


def test_runs_as_a_module_with_exit_status_and_one_line_error(tmp_path):
    missing = tmp_path / "missing"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "garden_vision.tools.images_to_tfrecords",
            "--image_dir",
            str(missing),
            "--output_prefix",
            str(tmp_path / "out" / "train"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "images_to_tfrecords" in line]
    assert errors == [f"images_to_tfrecords: error: --image_dir {str(missing)!r} does not exist"]
    assert "Traceback" not in result.stderr


def _bmp(pixels):
    """A 24-bit BMP file of `pixels` (TensorFlow decodes BMP but cannot encode it)."""
    height, width, _ = pixels.shape
    row_size = (3 * width + 3) // 4 * 4
    rows = b"".join(
        pixels[y, :, ::-1].tobytes() + b"\0" * (row_size - 3 * width)
        for y in reversed(range(height))
    )
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(rows), 0, 0, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(rows), 0, 0, 14 + len(info))
    return header + info + rows


def test_bmp_images_are_stored_as_png(tmp_path):
    pixels = np.random.default_rng(3).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    (tmp_path / "images" / "tile").mkdir(parents=True)
    (tmp_path / "images" / "tile" / "t.bmp").write_bytes(_bmp(pixels))
    prefix = tmp_path / "out" / "train"
    assert tool.main(["--image_dir", str(tmp_path / "images"), "--output_prefix", str(prefix)]) == 0
    (record,) = _read_records([tmp_path / "out" / "train-00000-of-00001.tfrecord"])
    assert record["image/format"] == b"png"
    assert (record["image/height"], record["image/width"]) == (5, 6)
    np.testing.assert_array_equal(tf.io.decode_png(record["image/encoded"]).numpy(), pixels)


# Segmentation mode (--masks_dir): image and mask pairs.


def _png_file(rows, colour_type, bit_depth=8, palette=None):
    """A PNG written by hand (TensorFlow encodes neither palette nor 1-4 bit PNGs)."""
    import zlib

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    height, width = rows.shape[:2]
    if bit_depth < 8:  # Pack the values of each row into bytes, most significant bits first.
        per_byte = 8 // bit_depth
        padded = np.zeros((height, -(-width // per_byte) * per_byte), np.uint8)
        padded[:, :width] = rows
        groups = padded.reshape(height, -1, per_byte).astype(np.uint16)
        shifts = bit_depth * np.arange(per_byte - 1, -1, -1)
        packed = (groups << shifts).sum(-1).astype(np.uint8)
    elif bit_depth == 16:
        packed = rows.astype(">u2").view(np.uint8).reshape(height, -1)
    else:
        packed = rows.reshape(height, -1).astype(np.uint8)
    raw = b"".join(b"\0" + row.tobytes() for row in packed)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header)]
    if palette is not None:
        parts.append(chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes()))
    parts += [chunk(b"IDAT", zlib.compress(raw)), chunk(b"IEND", b"")]
    return b"".join(parts)


def _voc_palette():
    """PASCAL VOC's colour map: entry i spreads i's bits over red, green and blue."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        value, red, green, blue = index, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= (value & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = red, green, blue
    return palette


@pytest.fixture
def segmentation_dirs(tmp_path):
    """Images (PNG, JPEG, nested) with grayscale, palette and 2-bit masks, plus a stray file."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    rng = np.random.default_rng(7)
    expected = {}
    layout = [("a.png", "png", 5, 7, "gray"), ("b.jpg", "jpeg", 6, 4, "palette"),
              ("sub/c.png", "png", 3, 9, "gray2")]  # fmt: skip
    for index, (name, image_format, height, width, kind) in enumerate(layout):
        pixels, _ = _write_image(images / name, image_format, height, width, index)
        stem = name.rsplit(".", 1)[0]
        (masks / stem).parent.mkdir(parents=True, exist_ok=True)
        if kind == "gray":
            labels = rng.integers(0, 21, (height, width)).astype(np.uint8)
            labels[0] = 255
            data = tf.io.encode_png(labels[..., None]).numpy()
        elif kind == "palette":
            labels = rng.choice([0, 1, 15, 20, 255], (height, width)).astype(np.uint8)
            data = _png_file(labels, colour_type=3, palette=_voc_palette())
        else:
            labels = rng.integers(0, 4, (height, width)).astype(np.uint8)
            data = _png_file(labels, colour_type=0, bit_depth=2)
        (masks / f"{stem}.png").write_bytes(data)
        expected[name] = (pixels, labels)
    (images / "notes.txt").write_text("skipped")
    return images, masks, expected


def test_segmentation_pairs_round_trip_through_decoder_and_parser(
    segmentation_dirs, tmp_path, capsys
):
    from garden_vision.dataloaders.segmentation_input import Decoder, Parser

    images, masks, expected = segmentation_dirs
    prefix = tmp_path / "out" / "seg"
    code, stdout, stderr = _run(
        capsys, "--image_dir", images, "--masks_dir", masks, "--output_prefix", prefix,
        "--num_shards", 2,
    )  # fmt: skip
    assert code == 0, stderr
    assert "wrote 3 images with their masks into 2 shards" in stdout
    assert "skipped 1 non-image files" in stdout
    assert not (tmp_path / "out" / "labels.txt").exists()
    shards = sorted((tmp_path / "out").glob("seg-*.tfrecord"))
    assert len(shards) == 2

    seen = {}
    for record in tf.data.TFRecordDataset([str(p) for p in shards]):
        decoded = Decoder().decode(record)
        source_id = decoded["image/source_id"].numpy().decode()
        pixels, labels = expected[source_id]
        height, width = labels.shape
        assert (int(decoded["image/height"]), int(decoded["image/width"])) == (height, width)
        mask = tf.io.decode_png(decoded["image/segmentation/class/encoded"]).numpy()
        assert mask.shape == (height, width, 1)  # One channel, whatever the input PNG was.
        _, parsed = Parser(output_size=[height, width]).parse_fn(False)(decoded)
        np.testing.assert_array_equal(parsed["masks"].numpy()[..., 0], labels)
        np.testing.assert_array_equal(parsed["valid_masks"].numpy()[..., 0], labels != 255)
        seen[source_id] = True
    assert sorted(seen) == sorted(expected)
    features = tf.io.parse_single_example(
        next(iter(tf.data.TFRecordDataset([str(shards[0])]))),
        {"image/segmentation/class/format": tf.io.FixedLenFeature((), tf.string)},
    )
    assert features["image/segmentation/class/format"].numpy() == b"png"


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing", ["has no mask", "b.png"]),
        ("size", ["is 4x4 (height x width)", "is 6x4"]),
        ("rgb", ["is not single-channel (RGB PNG)"]),
        ("alpha", ["is not single-channel (grayscale with alpha PNG)"]),
        ("not_png", ["is not a PNG image"]),
        ("16bit", ["values above 255"]),
    ],
)
def test_bad_masks_are_one_line_errors_naming_the_file(
    segmentation_dirs, tmp_path, capsys, case, fragments
):
    images, masks, _ = segmentation_dirs
    bad = masks / "b.png"
    if case == "missing":
        bad.unlink()
    elif case == "size":
        bad.write_bytes(tf.io.encode_png(np.zeros((4, 4, 1), np.uint8)).numpy())
    elif case == "rgb":
        bad.write_bytes(tf.io.encode_png(np.zeros((6, 4, 3), np.uint8)).numpy())
    elif case == "alpha":
        bad.write_bytes(tf.io.encode_png(np.zeros((6, 4, 2), np.uint8)).numpy())
    elif case == "not_png":
        bad.write_bytes(tf.io.encode_jpeg(np.zeros((6, 4, 1), np.uint8)).numpy())
    else:
        bad.write_bytes(_png_file(np.full((6, 4), 300, np.uint16), colour_type=0, bit_depth=16))
    out = tmp_path / "out"
    code, _, stderr = _run(
        capsys, "--image_dir", images, "--masks_dir", masks, "--output_prefix", out / "seg"
    )
    _assert_one_line_error(code, stderr, str(bad) if case != "missing" else "b.jpg", *fragments)
    assert not out.exists() or list(out.iterdir()) == []


def test_sixteen_bit_masks_with_small_values_are_stored_as_eight_bit(segmentation_dirs, tmp_path):
    images, masks, expected = segmentation_dirs
    labels = np.arange(24, dtype=np.uint16).reshape(6, 4)
    (masks / "b.png").write_bytes(_png_file(labels, colour_type=0, bit_depth=16))
    summary = tool.write_segmentation_tfrecords(
        str(images), str(masks), str(tmp_path / "out" / "seg")
    )
    assert summary.num_images == 3
    for record in tf.data.TFRecordDataset(summary.shards):
        parsed = tf.io.parse_single_example(
            record,
            {
                "image/source_id": tf.io.FixedLenFeature((), tf.string),
                "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
            },
        )
        if parsed["image/source_id"].numpy() == b"b.jpg":
            mask = tf.io.decode_png(parsed["image/segmentation/class/encoded"]).numpy()
            np.testing.assert_array_equal(mask[..., 0], labels)


def test_label_file_is_refused_with_masks_and_failed_runs_leave_no_shards(
    segmentation_dirs, tmp_path, capsys
):
    images, masks, _ = segmentation_dirs
    out = tmp_path / "out"
    code, _, stderr = _run(
        capsys, "--image_dir", images, "--masks_dir", masks, "--output_prefix", out / "seg",
        "--label_file", out / "labels.txt",
    )  # fmt: skip
    _assert_one_line_error(code, stderr, "--label_file")
    code, _, stderr = _run(
        capsys, "--image_dir", images, "--masks_dir", tmp_path / "nope", "--output_prefix",
        out / "seg",
    )  # fmt: skip
    _assert_one_line_error(code, stderr, "--masks_dir", "does not exist")
    # A bad mask after complete shards: none of the shards are kept.
    (masks / "sub" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    code, _, stderr = _run(
        capsys, "--image_dir", images, "--masks_dir", masks, "--output_prefix", out / "seg",
        "--num_shards", 3,
    )  # fmt: skip
    _assert_one_line_error(code, stderr, "c.png")
    assert not [p for p in tmp_path.rglob("*.tfrecord*")]
