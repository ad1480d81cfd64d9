"""coco_to_tfrecords: a tiny COCO dataset (PNG and JPEG images, polygon, RLE and crowd
annotations) round-trips into Model Garden detection tf.Examples read back with plain
tf.io.parse_single_example, and bad input ends with a one-line error naming the file and the
image or annotation id, exit status 1 and no partial shards."""

import copy
import hashlib
import importlib.metadata
import json

import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_api

from garden_vision.tools import coco_to_tfrecords as tool

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/format": tf.io.FixedLenFeature((), tf.string),
    "image/source_id": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/filename": tf.io.FixedLenFeature((), tf.string),
    "image/key/sha256": tf.io.FixedLenFeature((), tf.string),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
    "image/object/mask": tf.io.VarLenFeature(tf.string),
}

# Image 1 (PNG, 40 high, 60 wide): a polygon rectangle, a hand-written crowd RLE covering
# rows 0-2 and columns 0-3 (column-major runs: 0 off, then 3 on / 37 off per column), and a
# box with no width (skipped). Image 2 (JPEG, 32 x 48, in a sub-folder): a polygon triangle
# and a box reaching half a pixel past the right edge (clipped). Image 3: no annotation.
CROWD_COUNTS = [0, 3, 37, 3, 37, 3, 37, 3, 40 * 60 - (3 * 40 + 3)]
DATASET = {
    "images": [
        {"id": 1, "file_name": "a.png", "height": 40, "width": 60},
        {"id": 2, "file_name": "sub/b.jpg", "height": 32, "width": 48},
        {"id": 3, "file_name": "c.png", "height": 16, "width": 16},
    ],
    "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
    "annotations": [
        {
            "id": 101,
            "image_id": 1,
            "category_id": 1,
            "bbox": [10, 5, 20, 20],
            "area": 400.0,
            "iscrowd": 0,
            "segmentation": [[10, 5, 30, 5, 30, 25, 10, 25]],
        },
        {
            "id": 102,
            "image_id": 1,
            "category_id": 3,
            "bbox": [0, 0, 4, 3],
            "area": 12.0,
            "iscrowd": 1,
            "segmentation": {"size": [40, 60], "counts": CROWD_COUNTS},
        },
        {
            "id": 105,
            "image_id": 1,
            "category_id": 1,
            "bbox": [3, 3, 0, 5],
            "area": 0.0,
            "iscrowd": 0,
            "segmentation": [[3, 3, 3, 8, 3, 3]],
        },
        {
            "id": 103,
            "image_id": 2,
            "category_id": 3,
            "bbox": [4, 4, 20, 10],
            "area": 100.5,
            "iscrowd": 0,
            "segmentation": [[4, 4, 24, 4, 4, 14]],
        },
        {
            "id": 104,
            "image_id": 2,
            "category_id": 1,
            "bbox": [40, 20, 8.5, 12],
            "area": 96.0,
            "iscrowd": 0,
            "segmentation": [[40, 20, 48, 20, 48, 32, 40, 32]],
        },
    ],
}


def _image_bytes(image_format, height, width, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    if image_format == "png":
        return tf.io.encode_png(pixels).numpy()
    return tf.io.encode_jpeg(pixels, quality=90).numpy()


@pytest.fixture
def coco(tmp_path):
    """The dataset's JSON and images in tmp_path; returns (json path, image dir, file bytes)."""
    image_dir = tmp_path / "images"
    (image_dir / "sub").mkdir(parents=True)
    files = {}
    for seed, (name, image_format, height, width) in enumerate(
        [("a.png", "png", 40, 60), ("sub/b.jpg", "jpeg", 32, 48), ("c.png", "png", 16, 16)]
    ):
        files[name] = _image_bytes(image_format, height, width, seed)
        (image_dir / name).write_bytes(files[name])
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(DATASET))
    return annotation_file, image_dir, files


def _write_json(path, dataset):
    path.write_text(json.dumps(dataset))
    return path


def _run(capsys, *args):
    code = tool.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _read(paths):
    records = []
    for record in tf.data.TFRecordDataset([str(p) for p in paths]):
        parsed = tf.io.parse_single_example(record, FEATURES)
        records.append(
            {
                k: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
                for k, v in parsed.items()
            }
        )
    return records


def _decode_png_mask(data):
    return tf.io.decode_png(data, channels=1).numpy()[..., 0]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
def test_round_trip_writes_every_field(coco, tmp_path, capsys):
    annotation_file, image_dir, files = coco
    prefix = tmp_path / "out" / "val"
    code, stdout, stderr = _run(
        capsys,
        "--annotation_file", annotation_file,
        "--image_dir", image_dir,
        "--output_prefix", prefix,
        "--num_shards", 2,
        "--include_masks",
    )  # fmt: skip
    assert code == 0, stderr
    assert "wrote 3 images (4 objects, 1 crowd) into 2 shards" in stdout
    assert "skipped 1 annotations" in stdout
    shards = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in shards] == [
        "val-00000-of-00002.tfrecord",
        "val-00001-of-00002.tfrecord",
    ]
    # Round-robin in file order: images 1 and 3 in shard 0, image 2 in shard 1.
    assert [r["image/source_id"] for r in _read(shards[:1])] == [b"1", b"3"]
    records = {r["image/source_id"]: r for r in _read(shards)}

    first = records[b"1"]
    assert first["image/encoded"] == files["a.png"]
    assert first["image/format"] == b"png"
    assert first["image/filename"] == b"a.png"
    assert (first["image/height"], first["image/width"]) == (40, 60)
    assert first["image/key/sha256"] == hashlib.sha256(files["a.png"]).hexdigest().encode()
    np.testing.assert_allclose(first["image/object/bbox/ymin"], [5 / 40, 0])
    np.testing.assert_allclose(first["image/object/bbox/xmin"], [10 / 60, 0])
    np.testing.assert_allclose(first["image/object/bbox/ymax"], [25 / 40, 3 / 40])
    np.testing.assert_allclose(first["image/object/bbox/xmax"], [30 / 60, 4 / 60])
    assert first["image/object/class/label"].tolist() == [1, 3]
    assert first["image/object/class/text"].tolist() == [b"cat", b"dog"]
    assert first["image/object/is_crowd"].tolist() == [0, 1]
    np.testing.assert_allclose(first["image/object/area"], [400, 12])
    polygon, crowd = (_decode_png_mask(m) for m in first["image/object/mask"])
    assert polygon.shape == crowd.shape == (40, 60)
    expected_crowd = np.zeros((40, 60), np.uint8)
    expected_crowd[0:3, 0:4] = 1
    np.testing.assert_array_equal(crowd, expected_crowd)
    # The rectangle (x 10..30, y 5..25) as pycocotools rasterizes it, values 0/1.
    reference = mask_api.decode(
        mask_api.merge(mask_api.frPyObjects([[10, 5, 30, 5, 30, 25, 10, 25]], 40, 60))
    )
    np.testing.assert_array_equal(polygon, reference)
    assert set(np.unique(polygon)) == {0, 1}
    assert abs(int(polygon.sum()) - 400) <= 45
    assert polygon[:4].sum() == polygon[27:].sum() == polygon[:, :9].sum() == 0

    second = records[b"2"]
    assert second["image/encoded"] == files["sub/b.jpg"]
    assert second["image/format"] == b"jpeg"
    assert second["image/filename"] == b"sub/b.jpg"
    assert (second["image/height"], second["image/width"]) == (32, 48)
    np.testing.assert_allclose(second["image/object/bbox/ymin"], [4 / 32, 20 / 32])
    np.testing.assert_allclose(second["image/object/bbox/xmin"], [4 / 48, 40 / 48])
    np.testing.assert_allclose(second["image/object/bbox/ymax"], [14 / 32, 1.0])
    np.testing.assert_allclose(second["image/object/bbox/xmax"], [24 / 48, 1.0])  # clipped
    assert second["image/object/class/label"].tolist() == [3, 1]
    assert second["image/object/class/text"].tolist() == [b"dog", b"cat"]
    np.testing.assert_allclose(second["image/object/area"], [100.5, 96])
    triangle = _decode_png_mask(second["image/object/mask"][0])
    assert triangle.shape == (32, 48)
    assert 60 <= triangle.sum() <= 140  # half of 20 x 10
    assert triangle[3:16, 3:26].sum() == triangle.sum()  # inside the box, give or take a pixel

    empty = records[b"3"]
    assert empty["image/encoded"] == files["c.png"]
    for key in ("image/object/bbox/xmin", "image/object/class/label", "image/object/mask"):
        assert empty[key].size == 0


def test_without_masks_and_skipping_images_without_annotations(coco, tmp_path, capsys):
    annotation_file, image_dir, _ = coco
    prefix = tmp_path / "out" / "train"
    code, stdout, stderr = _run(
        capsys,
        "--object_annotations_file", annotation_file,
        "--image_dir", image_dir,
        "--output_file_prefix", prefix,
        "--skip_images_without_annotations",
    )  # fmt: skip
    assert code == 0, stderr
    assert "skipped 1 images without annotations" in stdout
    records = _read([tmp_path / "out" / "train-00000-of-00001.tfrecord"])
    assert [r["image/source_id"] for r in records] == [b"1", b"2"]
    assert all(r["image/object/mask"].size == 0 for r in records)


@pytest.mark.parametrize(
    ("policy", "expected_xmax"), [("clip", [24 / 48, 1.0]), ("skip", [24 / 48])]
)
def test_bbox_outside_image_policies(coco, tmp_path, policy, expected_xmax):
    annotation_file, image_dir, _ = coco
    dataset = copy.deepcopy(DATASET)
    dataset["annotations"][4]["bbox"] = [40, 20, 30, 12]  # 22 pixels past the right edge
    _write_json(annotation_file, dataset)
    summary = tool.write_tfrecords(
        str(annotation_file), str(image_dir), str(tmp_path / "o" / "x"), bbox_outside_image=policy
    )
    records = {r["image/source_id"]: r for r in _read(summary.shards)}
    np.testing.assert_allclose(records[b"2"]["image/object/bbox/xmax"], expected_xmax)


def _mutate(dataset, change):
    dataset = copy.deepcopy(dataset)
    change(dataset)
    return dataset


BAD_CASES = {
    "bbox outside": (
        lambda d: d["annotations"][3].update(bbox=[4, 4, 60, 10]),
        ["instances.json", "annotation id 103", "image id 2", "outside"],
    ),
    "unknown category": (
        lambda d: d["annotations"][4].update(category_id=7),
        ["instances.json", "annotation id 104", "unknown category id 7", "known: 1, 3"],
    ),
    "unknown image": (
        lambda d: d["annotations"][0].update(image_id=9),
        ["instances.json", "annotation id 101", "image_id 9"],
    ),
    "size mismatch": (
        lambda d: d["images"][0].update(height=41),
        ["a.png", "image id 1", "60x40", "60x41"],
    ),
    "bad polygon": (
        lambda d: d["annotations"][4].update(segmentation=[[40, 20, 48]]),
        ["instances.json", "annotation id 104", "polygon"],
    ),
    "bad rle size": (
        lambda d: d["annotations"][1]["segmentation"].update(size=[60, 40]),
        ["instances.json", "annotation id 102", "[40, 60]"],
    ),
    "bad bbox": (
        lambda d: d["annotations"][0].update(bbox=[1, 2, 3]),
        ["instances.json", "annotation id 101", "bbox"],
    ),
    "duplicate image": (
        lambda d: d["images"].append(dict(d["images"][0])),
        ["instances.json", "image id 1", "twice"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_fails_in_one_line_and_leaves_no_files(coco, tmp_path, capsys, case):
    annotation_file, image_dir, _ = coco
    change, expected = BAD_CASES[case]
    _write_json(annotation_file, _mutate(DATASET, change))
    out = tmp_path / "out"
    out.mkdir()
    # An earlier run's shard under a name this run writes must survive the failure intact.
    old_shard = out / "val-00001-of-00002.tfrecord"
    old_shard.write_bytes(b"earlier run")
    code, stdout, stderr = _run(
        capsys,
        "--annotation_file", annotation_file,
        "--image_dir", image_dir,
        "--output_prefix", out / "val",
        "--num_shards", 2,
        "--include_masks",
    )  # fmt: skip
    assert code == 1
    assert stdout == ""
    assert stderr.startswith("coco_to_tfrecords: error: ")
    assert stderr.count("\n") == 1, stderr
    for text in expected:
        assert text in stderr, (text, stderr)
    assert sorted(p.name for p in out.iterdir()) == [old_shard.name]
    assert old_shard.read_bytes() == b"earlier run"


def test_missing_image_of_the_last_shard_leaves_nothing_half_written(coco, tmp_path, capsys):
    annotation_file, image_dir, _ = coco
    (image_dir / "sub" / "b.jpg").unlink()  # image 2: written into the second shard
    out = tmp_path / "out"
    code, _, stderr = _run(
        capsys,
        "--annotation_file", annotation_file,
        "--image_dir", image_dir,
        "--output_prefix", out / "val",
        "--num_shards", 2,
    )  # fmt: skip
    assert code == 1
    assert "sub/b.jpg" in stderr
    assert "image id 2" in stderr
    assert "does not exist" in stderr
    assert list(out.iterdir()) == []  # shard 0 was complete, yet nothing was renamed in


def test_malformed_json_names_the_file_and_line(coco, tmp_path, capsys):
    annotation_file, image_dir, _ = coco
    annotation_file.write_text('{"images": [\n  {"id": 1,,}\n]}')
    code, _, stderr = _run(
        capsys,
        "--annotation_file", annotation_file,
        "--image_dir", image_dir,
        "--output_prefix", tmp_path / "out" / "val",
    )  # fmt: skip
    assert code == 1
    assert "instances.json" in stderr
    assert "not valid JSON" in stderr
    assert "line 2" in stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_too_many_shards_and_usage_errors(coco, tmp_path, capsys):
    annotation_file, image_dir, _ = coco
    code, _, stderr = _run(
        capsys,
        "--annotation_file", annotation_file,
        "--image_dir", image_dir,
        "--output_prefix", tmp_path / "val",
        "--num_shards", 4,
    )  # fmt: skip
    assert code == 1
    assert "--num_shards 4 is more than the 3 images" in stderr
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--image_dir", str(image_dir)])
    assert exit_info.value.code == 2


def test_console_script_is_registered():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (script,) = [s for s in scripts if s.name == "garden-coco-to-tfrecords"]
    assert script.value == "garden_vision.tools.coco_to_tfrecords:run"


def test_garden_tf_example_decoder_reads_the_output(coco, tmp_path):
    from garden_vision.dataloaders.tf_example_decoder import TfExampleDecoder

    annotation_file, image_dir, files = coco
    summary = tool.write_tfrecords(
        str(annotation_file), str(image_dir), str(tmp_path / "val"), include_masks=True
    )
    decoder = TfExampleDecoder(include_mask=True)
    decoded = {}
    for record in tf.data.TFRecordDataset(summary.shards):
        values = decoder.decode(record)
        decoded[values["source_id"].numpy()] = values
    first = decoded[b"1"]
    np.testing.assert_array_equal(
        first["image"].numpy(), tf.io.decode_png(files["a.png"], channels=3).numpy()
    )
    assert (int(first["height"]), int(first["width"])) == (40, 60)
    np.testing.assert_allclose(
        first["groundtruth_boxes"].numpy(),
        [[5 / 40, 10 / 60, 25 / 40, 30 / 60], [0, 0, 3 / 40, 4 / 60]],
    )
    assert first["groundtruth_classes"].numpy().tolist() == [1, 3]
    assert first["groundtruth_is_crowd"].numpy().tolist() == [False, True]
    np.testing.assert_allclose(first["groundtruth_area"].numpy(), [400, 12])
    masks = first["groundtruth_instance_masks"].numpy()
    assert masks.shape == (2, 40, 60)
    assert set(np.unique(masks)) == {0.0, 1.0}
    assert masks[1].sum() == 12  # the crowd RLE's 3 x 4 block
    second = decoded[b"2"]
    assert second["image"].shape == (32, 48, 3)
    assert decoded[b"3"]["groundtruth_boxes"].shape == (0, 4)
