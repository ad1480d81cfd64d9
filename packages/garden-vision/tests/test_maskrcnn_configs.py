"""Faster / Mask / Cascade R-CNN configs and experiments.

`tests/data/model_garden/{fasterrcnn,maskrcnn,cascadercnn}_*.yaml` are
`exp_factory.get_exp_config(NAME).as_dict()` of tf-models-official 2.20 (written by
`tools/dump_model_garden_configs.py`): each loads with a strict override into the Garden
experiment of the same name and changes nothing, and the recipes' numbers are read from
those files. Fields Garden does not support load at their defaults and are errors otherwise.
"""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from garden_core import experiment_factory
from garden_core.config import ConfigError
from garden_core.testing import model_garden_configs
from garden_core.testing.model_garden_configs import flatten
from garden_vision.configs import maskrcnn

DATA = pathlib.Path(__file__).parent / "data" / "model_garden"
MODEL_GARDEN = {
    "fasterrcnn_resnetfpn_coco": maskrcnn.fasterrcnn_resnetfpn_coco,
    "maskrcnn_resnetfpn_coco": maskrcnn.maskrcnn_resnetfpn_coco,
    "maskrcnn_spinenet_coco": maskrcnn.maskrcnn_spinenet_coco,
    "maskrcnn_mobilenet_coco": maskrcnn.maskrcnn_mobilenet_coco,
    "cascadercnn_spinenet_coco": maskrcnn.cascadercnn_spinenet_coco,
}
FACTORIES = {**MODEL_GARDEN, "shapes_instance_segmentation": maskrcnn.shapes_instance_segmentation}


def fixture(name: str) -> dict:
    return model_garden_configs.fixture(DATA, name)


def loaded(name: str, data: dict):
    params = FACTORIES[name]()
    params.override(data)
    params.validate()
    return params


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_experiments_are_registered_build_and_validate(name):
    params = experiment_factory.get_experiment_config(name)
    params.validate()
    assert params == FACTORIES[name]()
    assert isinstance(params.task, maskrcnn.MaskRCNNTask)


@pytest.mark.parametrize("name", sorted(MODEL_GARDEN))
def test_model_garden_yaml_loads_into_the_factory_unchanged(name):
    data = fixture(name)
    params = loaded(name, data)
    after = flatten(params.as_dict())
    before = flatten(FACTORIES[name]().as_dict())
    assert {key for key in after if after[key] != before.get(key)} == set()
    # Every value Garden holds under a Model Garden name is the YAML's.
    expected = flatten(data)
    shared = set(after) & set(expected)
    assert len(shared) > 150
    assert {key: after[key] for key in shared} == {key: expected[key] for key in shared}


def test_the_recipes_hold_model_gardens_numbers():
    # The values below are those of the Model Garden YAML fixtures.
    faster = maskrcnn.fasterrcnn_resnetfpn_coco()
    assert not faster.task.model.include_mask
    assert faster.task.model.mask_head is None
    assert faster.task.model.mask_sampler is None
    assert faster.task.model.input_size == [1024, 1024, 3]
    assert (faster.task.model.min_level, faster.task.model.max_level) == (2, 6)
    assert faster.task.init_checkpoint_modules == "backbone"
    assert faster.trainer.train_steps == 22500
    assert faster.trainer.optimizer_config.learning_rate.stepwise.boundaries == [15000, 20000]
    mask = maskrcnn.maskrcnn_resnetfpn_coco()
    assert mask.runtime.enable_xla
    assert not faster.runtime.enable_xla
    assert mask.task.model.mask_head.num_filters == 256
    assert mask.task.train_data.parser.mask_crop_size == 112
    assert mask.task.validation_data.drop_remainder is False
    cascade = maskrcnn.cascadercnn_spinenet_coco().task.model
    assert cascade.roi_sampler.cascade_iou_thresholds == [0.6, 0.7]
    assert cascade.detection_head.class_agnostic_bbox_pred
    assert cascade.norm_activation.activation == "swish"
    mobile = maskrcnn.maskrcnn_mobilenet_coco()
    assert mobile.task.model.detection_head.fc_dims == 512
    assert mobile.trainer.train_steps == 350 * 232
    bare = maskrcnn.MaskRCNNTask()
    assert (bare.model.anchor.num_scales, bare.model.anchor.anchor_size) == (1, 8.0)
    assert bare.losses.rpn_huber_loss_delta == pytest.approx(1 / 9)
    assert (bare.model.norm_activation.norm_momentum, bare.model.norm_activation.norm_epsilon) == (
        0.997,
        1e-4,
    )
    assert bare.model.mask_roi_aligner.crop_size == 14
    assert bare.model.roi_aligner.crop_size == 7


def test_shapes_instance_segmentation_is_a_small_mask_rcnn_on_garden_shapes():
    params = maskrcnn.shapes_instance_segmentation()
    task = params.task
    assert task.train_data.tfds_name == "garden_shapes/multi"
    assert task.validation_data.tfds_split == "validation"
    # 9 shape classes plus background, 128 x 128 images.
    assert task.model.num_classes == 10
    assert task.model.input_size == [128, 128, 3]
    assert task.model.include_mask
    assert task.annotation_file is None
    assert task.model.backbone.resnet.model_id == 18
    assert task.model.roi_generator.num_proposals <= 100
    assert params.trainer.best_checkpoint_eval_metric == "mask_AP"
    assert params.runtime.distribution_strategy == "one_device"


def test_shapes_settings_build_the_parser():
    from garden_vision.dataloaders import maskrcnn_input

    task = maskrcnn.shapes_instance_segmentation().task
    model, parser = task.model, task.train_data.parser
    built = maskrcnn_input.Parser(
        output_size=model.input_size[:2],
        min_level=model.min_level,
        max_level=model.max_level,
        num_scales=model.anchor.num_scales,
        aspect_ratios=model.anchor.aspect_ratios,
        anchor_size=model.anchor.anchor_size,
        rpn_match_threshold=parser.rpn_match_threshold,
        rpn_unmatched_threshold=parser.rpn_unmatched_threshold,
        rpn_batch_size_per_im=parser.rpn_batch_size_per_im,
        rpn_fg_fraction=parser.rpn_fg_fraction,
        aug_rand_hflip=parser.aug_rand_hflip,
        aug_scale_min=parser.aug_scale_min,
        aug_scale_max=parser.aug_scale_max,
        aug_type=parser.aug_type,
        max_num_instances=parser.max_num_instances,
        include_mask=model.include_mask,
        outer_boxes_scale=model.outer_boxes_scale,
        mask_crop_size=parser.mask_crop_size,
        dtype=task.train_data.dtype,
        num_classes=model.num_classes,
    )
    assert built.parse_fn(True) is not None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "train_data", "parser", "num_channels"), 1, "3-channel"),
        (("task", "train_data", "parser", "keep_aspect_ratio"), False, "aspect ratio"),
        (("task", "train_data", "parser", "pad"), False, "pads"),
        (("task", "train_data", "parser", "match_threshold"), 0.6, "rpn_match_threshold"),
        (("task", "train_data", "parser", "unmatched_threshold"), 0.4, "rpn_unmatched"),
        (("task", "use_wod_metrics"), True, "Waymo"),
        (("task", "use_approx_instance_metrics"), True, "approximate"),
        (("task", "train_data", "weights"), {"a": 1.0}, "weights"),
        (("task", "validation_data", "enable_tf_data_service"), True, "tf.data service"),
        (("task", "model", "backbone", "type"), "mobiledet", "not support"),
    ],
)
def test_an_unsupported_field_away_from_its_default_is_an_error(path, value, message):
    data = fixture("maskrcnn_resnetfpn_coco")
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message) as error:
        loaded("maskrcnn_resnetfpn_coco", data)
    assert path[-1] in str(error.value)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"task.train_data.parser.aug_type": {"type": "mixup"}}, "aug_type"),
        ({"task.train_data.parser.box_outside_image": "ignore"}, "box_outside_image"),
        ({"task.train_data.parser.rpn_fg_fraction": 1.5}, "rpn_fg_fraction <= 1"),
        ({"task.train_data.parser.rpn_unmatched_threshold": 0.8}, "rpn_unmatched_threshold"),
        ({"task.train_data.parser.mask_crop_size": 0}, "mask_crop_size > 0"),
        ({"task.model.detection_generator.nms_version": "tflite"}, "nms_version"),
        ({"task.model.detection_generator.soft_nms_sigma": 0.5}, "soft_nms_sigma"),
        ({"task.model.roi_generator.test_nms_iou_threshold": 1.5}, "test_nms_iou_threshold"),
        ({"task.model.roi_sampler.foreground_fraction": -0.1}, "foreground_fraction"),
        ({"task.model.roi_sampler.cascade_iou_thresholds": [0.6, 1.2]}, "cascade_iou_thresholds"),
        ({"task.model.roi_sampler.cascade_iou_thresholds": [0.6]}, "class_agnostic_bbox_pred"),
        ({"task.model.detection_head.cascade_class_ensemble": True}, "cascade_class_ensemble"),
        ({"task.model.mask_head": None}, "mask_head"),
        ({"task.model.outer_boxes_scale": 0.5}, "outer_boxes_scale"),
        ({"task.model.min_level": 7}, "min_level <= max_level"),
        ({"task.losses.frcnn_class_loss_top_k_percent": 0.0}, "top_k_percent"),
        ({"task.init_checkpoint_modules": ["backbone", "head"]}, "init_checkpoint_modules"),
        ({"task.allowed_mask_class_ids": [0, 3]}, "allowed_mask_class_ids"),
    ],
)
def test_bad_values_are_errors_naming_the_field(override, field):
    params = maskrcnn.maskrcnn_resnetfpn_coco()

    def apply_and_validate():
        params.override(override)
        params.validate()

    with pytest.raises(ConfigError, match=field):
        apply_and_validate()


def test_wrong_types_and_unknown_keys_name_the_path():
    params = maskrcnn.maskrcnn_resnetfpn_coco()
    with pytest.raises(ConfigError, match=r"task\.model\.rpn_head\.num_filters"):
        params.override({"task": {"model": {"rpn_head": {"num_filters": "wide"}}}})
    with pytest.raises(ConfigError, match="roi_sampler"):
        params.override({"task.model.roi_samplr.num_sampled_rois": 256})


def test_spinenet_levels_must_be_the_models():
    params = maskrcnn.maskrcnn_spinenet_coco()
    params.override({"task.model.max_level": 6})
    with pytest.raises(ConfigError, match=r"backbone\.spinenet\.max_level"):
        params.validate()


def test_overrides_turn_faster_rcnn_into_mask_rcnn():
    params = maskrcnn.fasterrcnn_resnetfpn_coco()
    params.override(
        yaml.safe_load(
            "task:\n  model:\n    include_mask: true\n    mask_head: {num_convs: 2}\n"
            "    mask_sampler: {}\n    mask_roi_aligner: {crop_size: 7}\n"
        )
    )
    params.validate()
    assert params.task.model.mask_head.num_convs == 2
    assert params.task.model.mask_head.num_filters == 256
    assert params.task.model.mask_sampler.num_sampled_masks == 128
    assert params.task.model.mask_roi_aligner.crop_size == 7


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_the_configs_round_trip_through_yaml(name):
    params = FACTORIES[name]()
    params.override({"task.allowed_mask_class_ids": [1, 2], "task.losses.class_weights": [1.0]})
    again = FACTORIES[name]()
    again.override(yaml.safe_load(params.as_yaml()))
    assert again == params
    if name == "fasterrcnn_resnetfpn_coco":
        assert again.task.model.mask_head is None


def test_model_garden_yaml_is_not_modified_by_loading():
    data = fixture("cascadercnn_spinenet_coco")
    original = copy.deepcopy(data)
    loaded("cascadercnn_spinenet_coco", data)
    assert data == original
