"""RetinaNet configs: Model Garden's own YAML loads into Garden's experiments unchanged.

`tests/data/model_garden/retinanet*.yaml` are `exp_factory.get_exp_config(NAME).as_dict()`
of tf-models-official 2.20 (written by `tools/dump_model_garden_configs.py`). Each loads
with a strict override into the Garden experiment factory of the same name and changes
nothing, so Garden's defaults and recipes are Model Garden's; fields Garden does not
support load at their defaults and are errors otherwise.
"""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from garden_core.config import ConfigError
from garden_core.testing import model_garden_configs
from garden_core.testing.model_garden_configs import flatten
from garden_vision.configs import retinanet

DATA = pathlib.Path(__file__).parent / "data" / "model_garden"
FACTORIES = {
    "retinanet": retinanet.retinanet,
    "retinanet_resnetfpn_coco": retinanet.retinanet_resnetfpn_coco,
    "retinanet_spinenet_coco": retinanet.retinanet_spinenet_coco,
    "retinanet_mobile_coco": retinanet.retinanet_mobile_coco,
}


def fixture(name: str) -> dict:
    return model_garden_configs.fixture(DATA, name)


def loaded(name: str, data: dict):
    params = FACTORIES[name]()
    params.override(data)
    params.validate()
    return params


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_model_garden_yaml_loads_into_the_factory_unchanged(name):
    params = loaded(name, fixture(name))
    after = flatten(params.as_dict())
    before = flatten(FACTORIES[name]().as_dict())
    assert {key for key in after if after[key] != before.get(key)} == set()
    # And the YAML's own values are what Garden holds (spot checks of each recipe).
    assert params.task.model.num_classes == fixture(name)["task"]["model"]["num_classes"]


def test_the_recipes_hold_model_gardens_numbers():
    coco = retinanet.retinanet_resnetfpn_coco()
    assert coco.task.model.input_size == [640, 640, 3]
    assert coco.task.model.backbone.resnet.model_id == 50
    assert coco.task.model.decoder.type == "fpn"
    assert coco.task.losses.l2_weight_decay == 1e-4
    assert coco.trainer.train_steps == 72 * (118287 // 256)
    schedule = coco.trainer.optimizer_config.learning_rate.stepwise
    assert schedule.boundaries == [57 * 462, 67 * 462]
    assert schedule.values == pytest.approx([0.32, 0.032, 0.0032])
    mobile = retinanet.retinanet_mobile_coco()
    assert mobile.task.model.head.num_filters == 48
    assert mobile.task.model.head.use_separable_conv
    assert mobile.task.model.backbone.type == "spinenet_mobile"
    bare = retinanet.retinanet().task
    assert (bare.losses.focal_loss_alpha, bare.losses.focal_loss_gamma) == (0.25, 1.5)
    assert (bare.losses.huber_loss_delta, bare.losses.box_loss_weight) == (0.1, 50)
    assert bare.model.detection_generator.nms_version == "v2"
    assert bare.model.anchor.aspect_ratios == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "train_data", "parser", "num_channels"), 1, "3-channel"),
        (("task", "train_data", "parser", "aug_rand_jpeg"), {"min_quality": 20}, "JPEG"),
        (("task", "train_data", "parser", "keep_aspect_ratio"), False, "aspect ratio"),
        (("task", "train_data", "parser", "aug_policy"), "v0", "aug_type"),
        (("task", "model", "detection_generator", "decode_boxes"), False, "decodes"),
        (("task", "use_wod_metrics"), True, "Waymo"),
        (("task", "train_data", "weights"), {"a": 1.0}, "weights"),
        (("task", "train_data", "enable_tf_data_service"), True, "tf.data service"),
        (("task", "model", "backbone", "type"), "mobiledet", "not support"),
    ],
)
def test_an_unsupported_field_away_from_its_default_is_an_error(path, value, message):
    data = fixture("retinanet_resnetfpn_coco")
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message) as error:
        loaded("retinanet_resnetfpn_coco", data)
    assert path[-1] in str(error.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"task.train_data.parser.box_outside_image": "ignore"}, "box_outside_image"),
        ({"task.train_data.parser.aug_type": {"type": "randaug"}}, "autoaug"),
        ({"task.train_data.parser.aug_scale_min": 2.0}, "aug_scale_min <= aug_scale_max"),
        ({"task.model.detection_generator.nms_version": "v3"}, "nms_version"),
        (
            {"task.model.detection_generator.soft_nms_sigma": 0.5},
            "soft_nms_sigma.*v1",
        ),
        ({"task.model.detection_generator.box_coder_weights": [10.0, 10.0]}, "4 positive"),
        ({"task.model.head.attribute_heads": [{"name": "d", "type": "rank"}]}, "rank"),
        ({"task.init_checkpoint_modules": ["backbone", "head"]}, "init_checkpoint_modules"),
        (
            {
                "task.model.head.attribute_heads": [{"name": "depth"}],
                "task.model.detection_generator.nms_version": "batched",
            },
            "attribute heads need",
        ),
        ({"task.losses.focal_loss_alpha": 1.5}, "focal_loss_alpha <= 1"),
        ({"task.model.min_level": 8}, "min_level <= max_level"),
    ],
)
def test_bad_values_are_errors_naming_the_field(override, message):
    params = retinanet.retinanet_resnetfpn_coco()
    params.override(override)
    with pytest.raises(ConfigError, match=message):
        params.validate()


def test_spinenet_levels_must_be_the_models():
    params = retinanet.retinanet_spinenet_coco()
    params.validate()
    params.override({"task.model.max_level": 6})
    with pytest.raises(ConfigError, match=r"backbone\.spinenet\.max_level"):
        params.validate()


def test_the_configs_round_trip_through_yaml():
    for factory in FACTORIES.values():
        params = factory()
        params.task.model.head.attribute_heads = [
            retinanet.AttributeHead(name="depth", prediction_tower_name="geo")
        ]
        again = factory()
        again.override(yaml.safe_load(params.as_yaml()))
        assert again.as_dict() == params.as_dict()
        assert again.task.model.head.attribute_heads[0].prediction_tower_name == "geo"


def test_model_garden_yaml_is_not_modified_by_loading():
    data = fixture("retinanet_mobile_coco")
    original = copy.deepcopy(data)
    loaded("retinanet_mobile_coco", data)
    assert data == original
