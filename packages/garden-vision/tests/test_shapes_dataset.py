"""garden_shapes: the generated TFDS builder prepares offline, loads, is deterministic, and its
labels, boxes, areas and masks agree with each other and with the rendered pixels."""

import dataclasses
import pathlib
import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

from garden_vision.datasets import shapes

SINGLE_TINY = dataclasses.replace(
    shapes.SINGLE, name="single_tiny", train_examples=24, validation_examples=12
)
MULTI_TINY = dataclasses.replace(
    shapes.MULTI, name="multi_tiny", train_examples=8, validation_examples=6
)
NUM_CLASSES = len(shapes.CLASS_NAMES)


@pytest.fixture(scope="module")
def no_network():
    """Makes any network connection fail while preparing, so `download_and_prepare` is offline."""

    def refuse(*args, **kwargs):
        raise OSError("network access during a garden_shapes test")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


def _prepare(config, data_dir):
    builder = shapes.GardenShapes(config=config, data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


@pytest.fixture(scope="module")
def single_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds_single")


@pytest.fixture(scope="module")
def single_builder(single_data_dir, no_network):
    return _prepare(SINGLE_TINY, single_data_dir)


@pytest.fixture(scope="module")
def multi_builder(tmp_path_factory, no_network):
    return _prepare(MULTI_TINY, tmp_path_factory.mktemp("tfds_multi"))


def _examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split)))


def _box_of(mask):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    size = mask.shape[0]
    return np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], np.float32) / size


def test_builder_is_registered_with_its_configs_and_version(tmp_path):
    assert "garden_shapes" in tfds.list_builders(with_community_datasets=False)
    assert shapes.GardenShapes.name == "garden_shapes"
    assert str(shapes.GardenShapes.VERSION) == "1.0.0"
    assert "1.0.0" in shapes.GardenShapes.RELEASE_NOTES
    assert sorted(shapes.GardenShapes.builder_configs) == ["multi", "single"]
    default = shapes.GardenShapes(data_dir=str(tmp_path))
    assert default.builder_config.name == "single"
    assert (default.builder_config.image_size, default.builder_config.max_shapes) == (64, 1)
    multi = shapes.GardenShapes.builder_configs["multi"]
    assert (multi.image_size, multi.min_shapes, multi.max_shapes) == (128, 1, 4)


def test_prepares_offline_and_loads_with_tfds_load(single_builder, single_data_dir):
    assert single_builder.is_prepared()
    prepared = single_data_dir / "garden_shapes" / "single_tiny" / "1.0.0"
    assert sorted(p.name for p in prepared.glob("*.tfrecord*"))
    splits = single_builder.info.splits
    assert (splits["train"].num_examples, splits["validation"].num_examples) == (24, 12)
    dataset = tfds.load(
        "garden_shapes",
        split="validation",
        data_dir=str(single_data_dir),
        builder_kwargs={"config": SINGLE_TINY},
        download=False,
        as_supervised=True,
    )
    pairs = list(tfds.as_numpy(dataset))
    assert len(pairs) == 12
    image, label = pairs[0]
    assert image.shape == (64, 64, 3)
    assert image.dtype == np.uint8
    assert 0 <= label < NUM_CLASSES


def test_single_features_have_the_documented_shapes_and_dtypes(single_builder):
    features = single_builder.info.features
    assert features["image"].shape == (64, 64, 3)
    assert features["segmentation_mask"].shape == (64, 64, 1)
    assert features["label"].names == list(shapes.CLASS_NAMES)
    assert "instance_masks" not in features
    for example in _examples(single_builder, "train"):
        assert example["image"].shape == (64, 64, 3)
        assert example["image"].dtype == np.uint8
        assert example["segmentation_mask"].shape == (64, 64, 1)
        assert example["segmentation_mask"].dtype == np.uint8
        assert example["label"].dtype == np.int64
        assert example["label"].shape == ()
        objects = example["objects"]
        assert objects["bbox"].shape == (1, 4)
        assert objects["bbox"].dtype == np.float32
        assert objects["label"].shape == (1,)
        assert objects["label"].dtype == np.int64
        assert objects["area"].shape == (1,)
        assert objects["area"].dtype == np.int64
        assert objects["label"][0] == example["label"]


def test_multi_features_have_the_documented_shapes_and_dtypes(multi_builder):
    assert multi_builder.info.features["instance_masks"].shape == (None, 128, 128, 1)
    counts = set()
    for example in _examples(multi_builder, "validation"):
        assert example["image"].shape == (128, 128, 3)
        assert example["segmentation_mask"].shape == (128, 128, 1)
        n = example["objects"]["label"].shape[0]
        counts.add(n)
        assert 1 <= n <= 4
        assert example["objects"]["bbox"].shape == (n, 4)
        assert example["instance_masks"].shape == (n, 128, 128, 1)
        assert example["instance_masks"].dtype == np.uint8
        largest = int(np.argmax(example["objects"]["area"]))
        assert example["label"] == example["objects"]["label"][largest]
    assert len(counts) > 1, "every multi example has the same number of shapes"


def test_two_generations_are_byte_identical(single_builder, tmp_path, no_network):
    again = _prepare(SINGLE_TINY, tmp_path)
    first = sorted(p for p in _files(single_builder) if ".tfrecord" in p.name)
    second = sorted(p for p in _files(again) if ".tfrecord" in p.name)
    assert [p.name for p in first] == [p.name for p in second]
    assert first
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def _files(builder):
    return list(pathlib.Path(builder.data_dir).iterdir())


def test_stored_examples_are_the_rendered_ones(single_builder):
    rendered = {
        shapes.render_example(SINGLE_TINY, "validation", i)["image"].tobytes(): i for i in range(12)
    }
    seen = set()
    for example in _examples(single_builder, "validation"):
        index = rendered[example["image"].tobytes()]
        expected = shapes.render_example(SINGLE_TINY, "validation", index)
        np.testing.assert_array_equal(example["segmentation_mask"], expected["segmentation_mask"])
        np.testing.assert_array_equal(example["objects"]["bbox"], expected["objects"]["bbox"])
        assert example["label"] == expected["label"]
        seen.add(index)
    assert seen == set(range(12))


def test_rendering_depends_on_seed_split_and_index_only():
    a = shapes.render_example("single", "train", 3)
    np.testing.assert_array_equal(
        a["image"], shapes.render_example(SINGLE_TINY, "train", 3)["image"]
    )
    assert not np.array_equal(a["image"], shapes.render_example("single", "validation", 3)["image"])
    assert not np.array_equal(a["image"], shapes.render_example("single", "train", 4)["image"])
    reseeded = dataclasses.replace(SINGLE_TINY, seed=1)
    assert not np.array_equal(a["image"], shapes.render_example(reseeded, "train", 3)["image"])


def test_every_class_appears_in_both_configs():
    single = {shapes.render_example("single", "train", i)["label"] for i in range(150)}
    assert single == set(range(NUM_CLASSES))
    multi = set()
    for i in range(60):
        multi.update(shapes.render_example("multi", "validation", i)["objects"]["label"].tolist())
    assert multi == set(range(NUM_CLASSES))


def test_single_boxes_areas_and_mask_agree_with_the_label():
    for i in range(40):
        example = shapes.render_example("single", "train", i)
        mask = example["segmentation_mask"][..., 0]
        label = example["label"]
        assert set(np.unique(mask).tolist()) == {0, label + 1}
        box = example["objects"]["bbox"][0]
        assert np.all((box >= 0.0) & (box <= 1.0))
        np.testing.assert_array_equal(box, _box_of(mask > 0))
        # Fully inside the image: a background margin on every side.
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert not border.any()
        assert example["objects"]["area"][0] == np.count_nonzero(mask)
        np.testing.assert_array_equal(example["instance_masks"][0, ..., 0], mask > 0)


def test_multi_instance_masks_boxes_and_semantic_mask_agree():
    several = 0
    for i in range(30):
        example = shapes.render_example("multi", "train", i)
        semantic = example["segmentation_mask"][..., 0]
        instances = example["instance_masks"][..., 0].astype(bool)
        objects = example["objects"]
        assert instances.sum(axis=0).max() <= 1, "instance masks overlap"
        np.testing.assert_array_equal(instances.any(axis=0), semantic > 0)
        for mask, box, label, area in zip(
            instances, objects["bbox"], objects["label"], objects["area"], strict=True
        ):
            assert area == mask.sum() > 0
            assert np.all((box >= 0.0) & (box <= 1.0))
            assert box[0] < box[2]
            assert box[1] < box[3]
            np.testing.assert_array_equal(box, _box_of(mask))
            assert np.all(semantic[mask] == label + 1)
        assert objects["area"].sum() == np.count_nonzero(semantic)
        several += int(len(objects["label"]) > 1)
    assert several > 0


def test_shapes_show_through_in_the_image():
    """The shape's pixels differ clearly from the background around them."""
    for i in range(20):
        example = shapes.render_example("single", "validation", i)
        image = example["image"].astype(np.float64)
        mask = example["segmentation_mask"][..., 0] > 0
        ring = np.zeros_like(mask)
        ymin, xmin, ymax, xmax = (example["objects"]["bbox"][0] * 64).astype(int)
        ring[max(ymin - 3, 0) : ymax + 3, max(xmin - 3, 0) : xmax + 3] = True
        ring &= ~mask
        inside, outside = image[mask].mean(axis=0), image[ring].mean(axis=0)
        assert np.linalg.norm(inside - outside) > 40.0, i


def test_classes_have_different_shapes_at_any_rotation_and_scale():
    """No class's mask matches another's well under any rotation or scale."""
    size, radius = 64, 26.0
    for a, name_a in enumerate(shapes.CLASS_NAMES):
        reference = shapes.shape_mask(name_a, size, radius)
        for name_b in shapes.CLASS_NAMES[a + 1 :]:
            best = 0.0
            for scale in np.linspace(0.75, 1.25, 6):
                for angle in np.linspace(0.0, 2 * np.pi, 30, endpoint=False):
                    other = shapes.shape_mask(name_b, size, radius * scale, angle)
                    iou = (reference & other).sum() / (reference | other).sum()
                    best = max(best, iou)
            assert best < 0.95, (name_a, name_b, best)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="no builder config 'pairs'"):
        shapes.render_example("pairs", "train", 0)
    with pytest.raises(ValueError, match="index >= 0"):
        shapes.render_example("single", "train", -1)
    with pytest.raises(ValueError, match="max_radius"):
        shapes.GardenShapesConfig(name="wide", max_radius=0.6)
    with pytest.raises(ValueError, match="min_shapes"):
        shapes.GardenShapesConfig(name="none", min_shapes=0)
    with pytest.raises(ValueError, match="no class 'oval'"):
        shapes.shape_mask("oval", 32, 10.0)


def test_importing_the_package_loads_no_tensorflow(import_probe):
    modules_after_import, modules_of, _ = import_probe
    loaded = modules_after_import("garden_vision.datasets")
    assert modules_of(loaded, "tensorflow", "tensorflow_datasets") == []
