"""Semantic segmentation configs and experiments.

`tests/data/model_garden/{semantic_segmentation,seg_*,mnv2_deeplabv3*}.yaml` are
`exp_factory.get_exp_config(NAME).as_dict()` of tf-models-official 2.20 (written by
`tools/dump_model_garden_configs.py`): each loads with a strict override into the Garden
experiment of the same name and changes nothing. Fields Garden does not support load at their
defaults and are errors otherwise.
"""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from garden_core.config import ConfigError
from garden_core.testing import model_garden_configs
from garden_core.testing.model_garden_configs import flatten
from garden_vision.configs import semantic_segmentation as seg

DATA = pathlib.Path(__file__).parent / "data" / "model_garden"
MODEL_GARDEN = {
    "semantic_segmentation": seg.semantic_segmentation,
    "seg_deeplabv3_pascal": seg.seg_deeplabv3_pascal,
    "seg_deeplabv3plus_pascal": seg.seg_deeplabv3plus_pascal,
    "seg_resnetfpn_pascal": seg.seg_resnetfpn_pascal,
    "mnv2_deeplabv3_pascal": seg.mnv2_deeplabv3_pascal,
    "seg_deeplabv3plus_cityscapes": seg.seg_deeplabv3plus_cityscapes,
    "mnv2_deeplabv3_cityscapes": seg.mnv2_deeplabv3_cityscapes,
    "mnv2_deeplabv3plus_cityscapes": seg.mnv2_deeplabv3plus_cityscapes,
}


def fixture(name: str) -> dict:
    return model_garden_configs.fixture(DATA, name)


def loaded(name: str, data: dict):
    params = MODEL_GARDEN[name]()
    params.override(data)
    params.validate()
    return params


@pytest.mark.parametrize("name", sorted(MODEL_GARDEN))
def test_model_garden_yaml_loads_into_the_factory_unchanged(name):
    data = fixture(name)
    params = loaded(name, data)
    after = flatten(params.as_dict())
    before = flatten(MODEL_GARDEN[name]().as_dict())
    assert {key for key in after if after[key] != before.get(key)} == set()
    # Every value Garden holds under a Model Garden name is the YAML's.
    expected = flatten(data)
    shared = set(after) & set(expected)
    assert len(shared) > 100
    assert {key: after[key] for key in shared} == {key: expected[key] for key in shared}


def test_the_recipes_hold_model_gardens_numbers():
    # The values below are those of the Model Garden YAML fixtures (and the DeepLab papers:
    # output stride 16 with ASPP rates 6/12/18, or 12/24/36 in DeepLabV3's PASCAL recipe).
    v3 = seg.seg_deeplabv3_pascal().task
    assert v3.model.backbone.type == "dilated_resnet"
    assert v3.model.backbone.dilated_resnet.model_id == 101
    assert v3.model.backbone.dilated_resnet.multigrid == [1, 2, 4]
    assert v3.model.backbone.dilated_resnet.stem_type == "v1"
    assert v3.model.decoder.aspp.dilation_rates == [12, 24, 36]
    assert (v3.model.decoder.aspp.level, v3.model.head.level) == (4, 4)
    assert v3.model.head.num_convs == 0
    assert v3.validation_data.resize_eval_groundtruth is False
    assert v3.validation_data.groundtruth_padded_size == [512, 512]
    plus = seg.seg_deeplabv3plus_pascal().task.model
    assert plus.decoder.aspp.dilation_rates == [6, 12, 18]
    assert (plus.head.feature_fusion, plus.head.low_level) == ("deeplabv3plus", 2)
    fpn = seg.seg_resnetfpn_pascal()
    assert (fpn.task.model.min_level, fpn.task.model.max_level) == (3, 7)
    assert fpn.trainer.train_steps == 450 * (10582 // 256)
    mobile = seg.mnv2_deeplabv3plus_cityscapes()
    assert mobile.task.model.head.low_level == "2/depthwise"
    assert mobile.task.model.backbone.mobilenet.output_intermediate_endpoints
    assert mobile.task.train_data.crop_size == [512, 1024]
    assert mobile.trainer.best_checkpoint_eval_metric == "mean_iou"
    bare = seg.SemanticSegmentationTask()
    assert bare.losses.ignore_label == 255
    assert bare.model.decoder.type == "identity"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "model", "mask_scoring_head"), {"num_convs": 4}, "mask-scoring"),
        (("task", "losses", "mask_scoring_weight"), 2.0, "mask-scoring"),
        (("task", "train_data", "weights"), {"a": 1.0}, "weights"),
        (("task", "train_data", "aug_policy"), "randaug", "does not read"),
        (("task", "train_input_partition_dims"), [1, 2, 1, 1], "partitioning"),
        (("task", "model", "backbone", "type"), "mobiledet", "not support"),
    ],
)
def test_an_unsupported_field_away_from_its_default_is_an_error(path, value, message):
    data = fixture("seg_deeplabv3plus_pascal")
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message) as error:
        loaded("seg_deeplabv3plus_pascal", data)
    assert path[-1] in str(error.value)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"task.model.head.feature_fusion": "deeplabv4"}, "feature_fusion"),
        ({"task.model.head.logit_activation": "relu"}, "logit_activation"),
        ({"task.train_data.output_size": [512]}, "output_size"),
        ({"task.train_data.crop_size": [0, 512]}, "crop_size"),
        ({"task.train_data.aug_scale_min": 3.0}, "aug_scale_min <= aug_scale_max"),
        ({"task.validation_data.groundtruth_padded_size": []}, "groundtruth_padded_size"),
        ({"task.train_data.image_feature.mean": [1.0]}, "image_feature.mean"),
        ({"task.train_data.image_feature.num_channels": 2}, "num_channels"),
        ({"task.losses.top_k_percent_pixels": 0.0}, "top_k_percent_pixels"),
        ({"task.losses.label_smoothing": 1.0}, "label_smoothing"),
        ({"task.losses.class_weights": [1.0, 2.0]}, "class_weights"),
        ({"task.init_checkpoint_modules": ["backbone", "head"]}, "init_checkpoint_modules"),
        ({"task.model.decoder.aspp.num_filters": 0}, "num_filters"),
        ({"task.model.backbone.dilated_resnet.last_stage_repeats": 0}, "last_stage_repeats"),
    ],
)
def test_bad_values_are_errors_naming_the_field(override, field):
    params = seg.seg_deeplabv3plus_pascal()

    def apply_and_validate():
        params.override(override)
        params.validate()

    with pytest.raises(ConfigError, match=field):
        apply_and_validate()


@pytest.mark.parametrize("name", sorted(MODEL_GARDEN))
def test_the_configs_round_trip_through_yaml(name):
    params = MODEL_GARDEN[name]()
    params.override({"task.losses.top_k_percent_pixels": 0.5})
    again = MODEL_GARDEN[name]()
    again.override(yaml.safe_load(params.as_yaml()))
    assert again == params


def test_model_garden_yaml_is_not_modified_by_loading():
    data = fixture("mnv2_deeplabv3plus_cityscapes")
    original = copy.deepcopy(data)
    loaded("mnv2_deeplabv3plus_cityscapes", data)
    assert data == original


def test_shapes_segmentation_is_a_small_deeplabv3plus_on_garden_shapes():
    params = seg.shapes_segmentation()
    params.validate()
    task = params.task
    assert task.train_data.tfds_name == "garden_shapes/multi"
    assert task.validation_data.tfds_split == "validation"
    # Background plus the 9 shape classes, 128 x 128 images.
    assert task.model.num_classes == 10
    assert task.model.input_size == [128, 128, 3]
    assert task.model.decoder.type == "aspp"
    assert task.model.head.feature_fusion == "deeplabv3plus"
    assert params.trainer.best_checkpoint_eval_metric == "mean_iou"
    assert params.runtime.distribution_strategy == "one_device"
