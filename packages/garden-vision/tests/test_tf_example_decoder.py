"""Tests of the detection `TfExampleDecoder` on tf.Examples the tests write."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from detection_data import detection_example, encode_image

from garden_vision.dataloaders import TfExampleDecoder

_RNG = np.random.default_rng(0)
IMAGE = _RNG.integers(0, 255, size=(6, 8, 3)).astype(np.uint8)
BOXES = [[0.0, 0.0, 0.5, 0.5], [0.25, 0.5, 1.0, 0.75]]


def _decode(serialized: bytes, **kwargs) -> dict:
    return TfExampleDecoder(**kwargs).decode(tf.constant(serialized))


def test_round_trip_of_every_field():
    serialized = detection_example(
        IMAGE, BOXES, [3, 7], source_id="42", is_crowd=[0, 1], areas=[10.0, 20.5]
    )
    decoded = _decode(serialized)
    assert decoded["source_id"].numpy() == b"42"
    np.testing.assert_array_equal(decoded["image"].numpy(), IMAGE)
    assert decoded["image"].dtype == tf.uint8
    assert int(decoded["height"]) == 6
    assert int(decoded["width"]) == 8
    np.testing.assert_array_equal(decoded["groundtruth_classes"].numpy(), [3, 7])
    assert decoded["groundtruth_classes"].dtype == tf.int64
    np.testing.assert_array_equal(decoded["groundtruth_is_crowd"].numpy(), [False, True])
    np.testing.assert_allclose(decoded["groundtruth_area"].numpy(), [10.0, 20.5])
    np.testing.assert_allclose(decoded["groundtruth_boxes"].numpy(), BOXES)
    assert "groundtruth_instance_masks" not in decoded


def test_jpeg_images_decode():
    flat = np.full((16, 16, 3), 120, np.uint8)
    decoded = _decode(detection_example(flat, BOXES, [1, 2], image_format="jpeg"))
    assert decoded["image"].shape == (16, 16, 3)
    np.testing.assert_allclose(decoded["image"].numpy().astype(int), 120, atol=3)


def test_missing_optional_fields_get_model_garden_defaults():
    serialized = detection_example(IMAGE, BOXES, [1, 2], include_size=False)
    decoded = _decode(serialized)
    # Size from the decoded image.
    assert int(decoded["height"]) == 6
    assert int(decoded["width"]) == 8
    # No is_crowd: all False.
    np.testing.assert_array_equal(decoded["groundtruth_is_crowd"].numpy(), [False, False])
    # No area: box area in pixels, 0.5 * 0.5 * 48 = 12 and 0.75 * 0.25 * 48 = 9.
    np.testing.assert_allclose(decoded["groundtruth_area"].numpy(), [12.0, 9.0])
    # No source id: a decimal hash of the image bytes, the same for the same bytes.
    source_id = decoded["source_id"].numpy()
    assert source_id.isdigit()
    assert int(source_id) < 2**22
    assert _decode(serialized)["source_id"].numpy() == source_id
    other = detection_example(255 - IMAGE, BOXES, [1, 2], include_size=False)
    assert _decode(other)["source_id"].numpy() != source_id


def test_regenerate_source_id_ignores_the_stored_one():
    serialized = detection_example(IMAGE, BOXES, [1, 2], source_id="42")
    decoded = _decode(serialized, regenerate_source_id=True)
    assert decoded["source_id"].numpy() != b"42"
    assert (
        decoded["source_id"].numpy()
        == _decode(detection_example(IMAGE, BOXES, [1, 2]))["source_id"].numpy()
    )


def test_record_without_objects():
    decoded = _decode(detection_example(IMAGE, np.zeros([0, 4]), []))
    assert decoded["groundtruth_boxes"].shape == (0, 4)
    assert decoded["groundtruth_classes"].shape == (0,)
    assert decoded["groundtruth_is_crowd"].shape == (0,)
    assert decoded["groundtruth_area"].shape == (0,)


def test_masks_decode_and_binarize():
    masks = np.zeros([2, 6, 8], np.uint8)
    masks[0, :3, :4] = 255
    masks[1, 1:, 4:6] = 100
    serialized = detection_example(IMAGE, BOXES, [1, 2], masks=masks)
    decoded = _decode(serialized, include_mask=True)
    assert decoded["groundtruth_instance_masks"].dtype == tf.float32
    np.testing.assert_array_equal(decoded["groundtruth_instance_masks"].numpy(), masks)
    assert decoded["groundtruth_instance_masks_png"].shape == (2,)
    binary = _decode(serialized, include_mask=True, mask_binarize_threshold=150)
    np.testing.assert_array_equal(
        binary["groundtruth_instance_masks"].numpy(), (masks > 150).astype(np.float32)
    )


def test_masks_of_a_record_without_objects():
    decoded = _decode(detection_example(IMAGE, np.zeros([0, 4]), []), include_mask=True)
    assert decoded["groundtruth_instance_masks"].shape == (0, 6, 8)


def test_attributes_decode_as_columns():
    serialized = detection_example(IMAGE, BOXES, [1, 2], attributes={"depth": [5, 9]})
    decoded = _decode(serialized, attribute_names=["depth"])
    np.testing.assert_array_equal(decoded["groundtruth_attributes"]["depth"].numpy(), [[5], [9]])


def test_lists_of_different_lengths_name_the_record():
    serialized = detection_example(IMAGE, BOXES, [1], source_id="1234")
    with pytest.raises(tf.errors.InvalidArgumentError, match="1234"):
        _decode(serialized)


def test_decodes_inside_tf_data():
    records = [
        detection_example(IMAGE, BOXES[:n], list(range(1, n + 1)), source_id=str(n))
        for n in (0, 1, 2)
    ]
    dataset = tf.data.Dataset.from_tensor_slices(records).map(TfExampleDecoder().decode)
    counts = [int(tf.shape(d["groundtruth_boxes"])[0]) for d in dataset]
    assert counts == [0, 1, 2]


def test_encode_image_round_trips_png():
    np.testing.assert_array_equal(tf.io.decode_png(encode_image(IMAGE)).numpy(), IMAGE)
