"""Tests of the TFDS COCO decoder on elements shaped like TFDS `coco/2017`'s."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from garden_vision.dataloaders import TFDS_ID_TO_DECODER_MAP, MSCOCODecoder

# TFDS label index -> COCO category id, from the COCO 2017 annotation file's `categories`:
# person (index 0) is id 1, stop sign (index 11) is id 13 after the unused id 12,
# toothbrush (index 79) is id 90.
KNOWN_IDS = {0: 1, 1: 2, 11: 13, 23: 25, 24: 27, 79: 90}
# All COCO category ids: 1-90 but the ten the 2014/2017 annotations leave unused.
KNOWN_IDS_ALL = sorted(set(range(1, 91)) - {12, 26, 29, 30, 45, 66, 68, 69, 71, 83})


def _element(labels) -> dict:
    count = len(labels)
    return {
        "image": tf.zeros([5, 7, 3], tf.uint8),
        "image/id": tf.constant(139, tf.int64),
        "image/filename": tf.constant("000000000139.jpg"),
        "objects": {
            "id": tf.range(count, dtype=tf.int64),
            "area": tf.constant([12] * count, tf.int64),
            "bbox": tf.constant([[0.1, 0.2, 0.6, 0.9]] * count, tf.float32, shape=[count, 4]),
            "is_crowd": tf.constant([False, True][:count] + [False] * (count - 2), tf.bool),
            "label": tf.constant(labels, tf.int64, shape=[count]),
        },
    }


def test_decodes_a_coco_element():
    decoded = MSCOCODecoder(coco_category_ids=False).decode(_element([0, 5]))
    assert decoded["source_id"].numpy() == b"139"
    assert int(decoded["height"]) == 5
    assert int(decoded["width"]) == 7
    assert decoded["height"].dtype == tf.int64
    np.testing.assert_array_equal(decoded["groundtruth_classes"].numpy(), [0, 5])
    np.testing.assert_array_equal(decoded["groundtruth_is_crowd"].numpy(), [False, True])
    np.testing.assert_allclose(decoded["groundtruth_area"].numpy(), [12.0, 12.0])
    assert decoded["groundtruth_area"].dtype == tf.float32
    np.testing.assert_allclose(decoded["groundtruth_boxes"].numpy(), [[0.1, 0.2, 0.6, 0.9]] * 2)
    assert decoded["image"].shape == (5, 7, 3)


def test_labels_map_to_coco_category_ids():
    labels = list(KNOWN_IDS)
    decoded = MSCOCODecoder().decode(_element(labels))
    np.testing.assert_array_equal(
        decoded["groundtruth_classes"].numpy(), [KNOWN_IDS[label] for label in labels]
    )


def test_image_without_objects_and_tf_data():
    dataset = tf.data.Dataset.from_tensors(_element([])).map(MSCOCODecoder().decode)
    decoded = next(iter(dataset))
    assert decoded["groundtruth_boxes"].shape == (0, 4)
    assert decoded["groundtruth_classes"].shape == (0,)


def test_decodes_tfds_mock_coco(tmp_path):
    with tfds.testing.mock_data(
        num_examples=2, policy=tfds.testing.MockPolicy.USE_CODE, data_dir=str(tmp_path)
    ):
        dataset = tfds.load("coco/2017", split="train", data_dir=str(tmp_path))
        decoded = list(dataset.map(TFDS_ID_TO_DECODER_MAP["coco/2017"]().decode))
    assert len(decoded) == 2
    for element in decoded:
        assert element["image"].dtype == tf.uint8
        assert element["image"].shape[-1] == 3
        assert element["height"] == element["image"].shape[0]
        assert element["source_id"].numpy().decode().lstrip("-").isdigit()
        # Mock data draws each object field's length on its own, so only shapes' ranks hold.
        assert element["groundtruth_boxes"].shape[-1] == 4
        assert element["groundtruth_is_crowd"].dtype == tf.bool
        assert set(element["groundtruth_classes"].numpy().tolist()) <= set(KNOWN_IDS_ALL)


def test_decoder_map_names_coco_versions():
    for name in ("coco/2017", "coco/2014", "coco"):
        assert TFDS_ID_TO_DECODER_MAP[name] is MSCOCODecoder


def test_garden_shapes_decoder_gives_instance_masks_when_the_config_has_them():
    from garden_vision.dataloaders.tfds_detection_decoders import GardenShapesDecoder

    masks = np.zeros([2, 4, 6, 1], np.uint8)
    masks[0, :2, :3] = 1
    masks[1, 3, 5] = 1
    element = {
        "image": tf.zeros([4, 6, 3], tf.uint8),
        "objects": {
            "bbox": tf.constant([[0.0, 0.0, 0.5, 0.5], [0.75, 0.8, 1.0, 1.0]]),
            "label": tf.constant([0, 8], tf.int64),
            "area": tf.constant([6, 1], tf.int64),
        },
        "instance_masks": tf.constant(masks),
    }
    decoded = GardenShapesDecoder().decode(element)
    assert decoded["groundtruth_instance_masks"].dtype == tf.float32
    np.testing.assert_array_equal(decoded["groundtruth_instance_masks"], masks[..., 0])
    np.testing.assert_array_equal(decoded["groundtruth_classes"], [1, 9])
    del element["instance_masks"]
    assert "groundtruth_instance_masks" not in GardenShapesDecoder().decode(element)
