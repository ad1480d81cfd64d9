"""Tests of `TfExampleDecoderLabelMap` and the label-map reader (CSV and pbtxt files)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from detection_data import detection_example

from garden_vision.dataloaders.tf_example_label_map_decoder import (
    TfExampleDecoderLabelMap,
    read_label_map,
)

IMAGE = np.zeros([4, 4, 3], np.uint8)
BOXES = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]]

PBTXT = """\
# A TF Object Detection API label map.
item {
  id: 1
  name: 'cat'
  display_name: "Cat"
}
item { id: 3 name: "dog" }
item {
  name: 'person'
  id: 17
  keypoints { id: 0 label: 'nose' }
}
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_label_map(tmp_path):
    path = _write(tmp_path, "map.csv", "1,cat\n3,dog\n\n17, person\n")
    assert read_label_map(path) == {"cat": 1, "dog": 3, "person": 17}


def test_pbtxt_label_map(tmp_path):
    path = _write(tmp_path, "map.pbtxt", PBTXT)
    assert read_label_map(path) == {"cat": 1, "dog": 3, "person": 17}


@pytest.mark.parametrize("suffix", ["csv", "pbtxt"])
def test_decoder_maps_class_names(tmp_path, suffix):
    text = "1,cat\n3,dog\n" if suffix == "csv" else PBTXT
    decoder = TfExampleDecoderLabelMap(_write(tmp_path, f"map.{suffix}", text))
    serialized = detection_example(
        IMAGE, BOXES, None, class_texts=["dog", "cat", "unicorn"], source_id="5"
    )
    decoded = decoder.decode(tf.constant(serialized))
    # Unknown names decode as -1, which the detection parsers reject.
    np.testing.assert_array_equal(decoded["groundtruth_classes"].numpy(), [3, 1, -1])
    np.testing.assert_allclose(decoded["groundtruth_boxes"].numpy(), BOXES)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", "1,cat\n2,dog,extra\n", r"bad.csv:2: expected an `id,name` row"),
        ("bad.csv", "1,cat\none,dog\n", r"bad.csv:2: class id 'one' is not an integer"),
        ("bad.csv", "1,cat\n2,cat\n", r"bad.csv:2: class name 'cat' is given id 2"),
        ("bad.pbtxt", "item {\n  id: 1\n}\n", r"bad.pbtxt:1: an item needs both `id` and `name`"),
        ("bad.pbtxt", "item {\n  id: x\n  name: 'a'\n}\n", r"bad.pbtxt:1: id 'x' is not"),
        ("bad.pbtxt", "item {\n  id: 1\n  name: 'a'\n", r"bad.pbtxt:3: expected `field: value`"),
        ("bad.pbtxt", "thing { id: 1 }\n", r"bad.pbtxt:1: expected `item \{`"),
        ("empty.csv", "\n", r"holds no classes"),
        ("map.json", "{}", r"unknown format"),
    ],
)
def test_bad_label_maps_name_file_and_line(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(ValueError, match=message):
        read_label_map(path)


def test_missing_label_map_file(tmp_path):
    with pytest.raises(ValueError, match="cannot be read"):
        TfExampleDecoderLabelMap(str(tmp_path / "nothing.csv"))
