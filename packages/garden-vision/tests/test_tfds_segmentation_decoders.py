"""TFDS segmentation decoders: Cityscapes' training ids, Oxford-IIIT Pet's trimap classes, and
a generated garden_shapes/multi split read through TFDS, the decoder and the Parser."""

import dataclasses
import socket

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.dataloaders.segmentation_input import Parser
from garden_vision.dataloaders.tfds_segmentation_decoders import (
    TFDS_ID_TO_DECODER_MAP,
    CityScapesDecoder,
    CityScapesDecorder,
    GardenShapesSegmentationDecoder,
    OxfordIIITPetDecoder,
)
from garden_vision.datasets import shapes

# Cityscapes label id -> trainId, from cityscapesScripts' `helpers/labels.py` (255: ignored).
CITYSCAPES_TRAIN_IDS = {
    **{label_id: 255 for label_id in range(34)},
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def test_cityscapes_ids_become_the_19_training_classes():
    ids = np.arange(36, dtype=np.uint8).reshape(6, 6, 1)
    image = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    decoded = CityScapesDecoder().decode(
        {"image_left": tf.constant(image), "segmentation_label": tf.constant(ids)}
    )
    labels = decoded["image/segmentation/class/encoded"].numpy()[..., 0]
    expected = [CITYSCAPES_TRAIN_IDS.get(i, i) for i in range(36)]  # 34, 35: unknown, kept.
    np.testing.assert_array_equal(labels.reshape(-1), expected)
    np.testing.assert_array_equal(decoded["image/encoded"], image)
    assert (int(decoded["image/height"]), int(decoded["image/width"])) == (6, 6)
    assert CityScapesDecorder is CityScapesDecoder  # Model Garden's spelling.


def test_oxford_pet_trimap_becomes_pet_background_border():
    trimap = np.array([[1, 2], [3, 1]], np.uint8)[..., None]
    decoded = OxfordIIITPetDecoder().decode(
        {"image": tf.zeros([2, 2, 3], tf.uint8), "segmentation_mask": tf.constant(trimap)}
    )
    np.testing.assert_array_equal(
        decoded["image/segmentation/class/encoded"].numpy()[..., 0], [[0, 1], [2, 0]]
    )


def test_decoder_map_names_the_datasets():
    for name in ("cityscapes", "cityscapes/semantic_segmentation"):
        assert TFDS_ID_TO_DECODER_MAP[name] is CityScapesDecoder
    assert TFDS_ID_TO_DECODER_MAP["oxford_iiit_pet"] is OxfordIIITPetDecoder
    assert TFDS_ID_TO_DECODER_MAP["garden_shapes/multi"] is GardenShapesSegmentationDecoder


@pytest.fixture(scope="module")
def multi_split(tmp_path_factory):
    """A tiny generated garden_shapes/multi, prepared offline."""

    def refuse(*args, **kwargs):
        raise OSError("network access during a garden_shapes test")

    config = dataclasses.replace(
        shapes.MULTI, name="multi_seg_tiny", train_examples=3, validation_examples=2
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        builder = shapes.GardenShapes(
            config=config, data_dir=str(tmp_path_factory.mktemp("tfds_seg"))
        )
        builder.download_and_prepare()
    return builder


def test_garden_shapes_masks_reach_the_parser_unchanged(multi_split):
    elements = multi_split.as_dataset(split="validation")
    size = shapes.MULTI.image_size
    parser = Parser(output_size=[size, size])
    decoder = GardenShapesSegmentationDecoder()
    parsed = elements.map(lambda e: (e, parser.parse_fn(False)(decoder.decode(e))))
    count = 0
    for element, (image, labels) in parsed:
        mask = element["segmentation_mask"].numpy()
        np.testing.assert_array_equal(labels["masks"].numpy(), mask)
        assert labels["valid_masks"].numpy().all()
        classes = set(np.unique(mask)) - {0}
        assert classes
        assert classes <= set(range(1, len(shapes.CLASS_NAMES) + 1))
        # Every object's class (0-8) is its label + 1 on its visible pixels.
        for label, instance in zip(
            element["objects"]["label"].numpy(), element["instance_masks"].numpy(), strict=True
        ):
            assert np.all(mask[instance[..., 0] > 0] == label + 1)
        assert image.shape == (size, size, 3)
        count += 1
    assert count == 2
