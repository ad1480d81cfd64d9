"""Fixtures of garden-vision's tests: tiny labelled image datasets they write themselves."""

from __future__ import annotations

import pytest
from colour_data import colour_images, write_tfrecords


@pytest.fixture(scope="session")
def colour_tfrecords(tmp_path_factory):
    """Train and validation TFRecords of the colour dataset: (train pattern, eval pattern)."""
    root = tmp_path_factory.mktemp("colours")
    train = write_tfrecords(root / "train", *colour_images(192, seed=0))
    validation = write_tfrecords(root / "valid", *colour_images(64, seed=1), num_files=1)
    return train, validation
