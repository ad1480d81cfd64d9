"""`RetinaNetModel` and `factory.build_retinanet`: a tiny ResNet-18-FPN RetinaNet end to end."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core import plugins
from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.configs import retinanet as retinanet_configs
from garden_vision.configs.retinanet import RetinaNet
from garden_vision.losses.retinanet_losses import retinanet_losses
from garden_vision.modeling.factory import build_retinanet
from garden_vision.modeling.layers.detection_generator import MultilevelDetectionGenerator
from garden_vision.modeling.retinanet_model import RetinaNetModel
from garden_vision.ops.anchor import AnchorLabeler

SIZE = 64
LEVELS = ("3", "4", "5", "6")
NUM_CLASSES = 4
ANCHORS = 2  # num_scales 1 x aspect ratios [1, 2]


def tiny_config(**changes) -> RetinaNet:
    settings = {
        "num_classes": NUM_CLASSES,
        "input_size": [SIZE, SIZE, 3],
        "min_level": 3,
        "max_level": 6,
        "anchor": {"num_scales": 1, "aspect_ratios": [1.0, 2.0], "anchor_size": 4.0},
        "backbone": {"type": "resnet", "resnet": {"model_id": 18, "depth_multiplier": 0.25}},
        "decoder": {"type": "fpn", "fpn": {"num_filters": 16}},
        "head": {"num_convs": 1, "num_filters": 16},
        "detection_generator": {
            "pre_nms_top_k": 50,
            "max_num_detections": 10,
            "pre_nms_score_threshold": 0.0,
            "nms_version": "batched",
        },
        "norm_activation": {"use_sync_bn": False},
    }
    config = RetinaNet.from_dict(settings)
    config.override(changes)
    return config


def build(config=None, **kwargs) -> RetinaNetModel:
    specs = keras.layers.InputSpec(shape=[None, SIZE, SIZE, 3])
    return build_retinanet(specs, config or tiny_config(), **kwargs)


def images(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype("float32")


def numpy_anchors(level, num_scales=1, aspect_ratios=(1.0, 2.0), anchor_size=4.0):
    """RetinaNet's anchors from the paper's rule: side anchor_size * 2**level at scale 1,
    area kept across aspect ratios (width / height), centers at (i + 0.5) * stride."""
    stride = 2**level
    cells = math.ceil(SIZE / stride)
    boxes = np.zeros((cells, cells, num_scales * len(aspect_ratios), 4), np.float32)
    for y in range(cells):
        for x in range(cells):
            k = 0
            for scale in range(num_scales):
                side = anchor_size * stride * 2 ** (scale / num_scales)
                for ratio in aspect_ratios:
                    h, w = side / math.sqrt(ratio), side * math.sqrt(ratio)
                    cy, cx = (y + 0.5) * stride, (x + 0.5) * stride
                    boxes[y, x, k] = [cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2]
                    k += 1
    return boxes.reshape(cells, cells, -1)


def test_training_outputs_are_the_raw_predictions_per_level():
    model = build()
    outputs = model(images(), training=True)
    assert sorted(outputs) == ["box_outputs", "cls_outputs"]
    cells = {level: math.ceil(SIZE / 2 ** int(level)) for level in LEVELS}
    assert {k: v.shape for k, v in outputs["cls_outputs"].items()} == {
        level: (2, cells[level], cells[level], ANCHORS * NUM_CLASSES) for level in LEVELS
    }
    assert {k: v.shape for k, v in outputs["box_outputs"].items()} == {
        level: (2, cells[level], cells[level], ANCHORS * 4) for level in LEVELS
    }


def test_inference_decodes_with_anchors_made_from_the_image_size():
    model = build()
    batch = images()
    outputs = model(batch, training=False)
    for key, shape in {
        "detection_boxes": (2, 10, 4),
        "detection_scores": (2, 10),
        "detection_classes": (2, 10),
        "num_detections": (2,),
    }.items():
        assert tuple(outputs[key].shape) == shape, key
    # The same generator on the same raw outputs with the paper's anchors (NumPy) agrees.
    anchors = {level: numpy_anchors(int(level)) for level in LEVELS}
    expected = model.detection_generator(
        outputs["box_outputs"],
        outputs["cls_outputs"],
        {k: np.tile(v[None], [2, 1, 1, 1]) for k, v in anchors.items()},
        np.array([[SIZE, SIZE]] * 2, np.float32),
    )
    for key in ("detection_boxes", "detection_scores", "detection_classes", "num_detections"):
        np.testing.assert_allclose(
            np.asarray(outputs[key]), np.asarray(expected[key]), atol=1e-4, err_msg=key
        )
    boxes = np.asarray(outputs["detection_boxes"])
    assert boxes.min() >= 0
    assert boxes.max() <= SIZE
    classes = np.asarray(outputs["detection_classes"])[np.asarray(outputs["detection_scores"]) > 0]
    assert classes.min() >= 1  # Background is never detected.


def test_fixed_anchors_and_call_anchors_give_the_same_detections():
    model = build()
    batch = images(seed=1)
    generated = model(batch, training=False)
    anchors = {level: numpy_anchors(int(level)) for level in LEVELS}
    given = model(batch, anchor_boxes=anchors, training=False)
    fixed = RetinaNetModel(
        model.backbone, model.decoder, model.head, model.detection_generator, anchor_boxes=anchors
    )
    from_init = fixed(batch, training=False)
    for key in ("detection_boxes", "detection_scores", "num_detections"):
        np.testing.assert_allclose(np.asarray(given[key]), np.asarray(generated[key]), atol=1e-4)
        np.testing.assert_allclose(
            np.asarray(from_init[key]), np.asarray(generated[key]), atol=1e-4
        )


def test_image_shape_clips_the_detections():
    model = build()
    clipped = model(images(), image_shape=np.array([[20, 30], [64, 64]], np.float32))
    boxes = np.asarray(clipped["detection_boxes"])
    assert boxes[0, :, 0::2].max() <= 20
    assert boxes[0, :, 1::2].max() <= 30
    full = model(images(), image_shape=np.array([[64, 64]] * 2, np.float32))
    default = model(images())
    np.testing.assert_allclose(
        np.asarray(default["detection_boxes"]), np.asarray(full["detection_boxes"]), atol=1e-5
    )


def test_intermediate_features_and_decoded_boxes_without_nms():
    model = build(tiny_config(detection_generator={"apply_nms": False}))
    outputs = model(images(), output_intermediate_features=True, training=False)
    assert {"backbone_2", "backbone_5", "decoder_3", "decoder_6"} <= set(outputs)
    assert "detection_boxes" not in outputs
    num_anchors = sum(math.ceil(SIZE / 2 ** int(level)) ** 2 * ANCHORS for level in LEVELS)
    assert tuple(outputs["decoded_boxes"].shape) == (2, num_anchors, 4)
    assert tuple(outputs["decoded_box_scores"].shape)[:2] == (2, num_anchors)


def test_attribute_heads_reach_training_and_detection_outputs():
    model = build(
        tiny_config(
            head={"attribute_heads": [{"name": "depth", "size": 1}]},
            detection_generator={"nms_version": "v2"},
        )
    )
    training = model(images(), training=True)
    assert tuple(training["attribute_outputs"]["depth"]["3"].shape) == (2, 8, 8, ANCHORS)
    inference = model(images(), training=False)
    assert tuple(inference["detection_attributes"]["depth"].shape)[:2] == (2, 10)


def test_without_a_decoder_the_backbone_must_give_the_head_its_levels():
    # ResNet's levels differ in width: a head needs one width (FPN's num_filters).
    with pytest.raises(ConfigError, match="one width"):
        build(tiny_config(decoder={"type": None}, max_level=5))
    with pytest.raises(ConfigError, match=r"levels \['6', '7'\] are missing"):
        build(tiny_config(decoder={"type": None}, max_level=7))


def test_shared_checks_config_checkpoint_keras_file_and_train_step(tmp_path):
    model = build()
    batch = images(batch=1)
    rebuilt = RetinaNetModel.from_config(model.get_config())
    rebuilt(batch)
    assert model_checks.count_params(rebuilt) == model_checks.count_params(model)
    model_checks.check_checkpoint_round_trip(model, rebuilt, batch, tmp_path)
    model_checks.check_keras_file_round_trip(model, batch, tmp_path)
    model_checks.check_train_step(model, batch)
    assert model.checkpoint_items.keys() == {"backbone", "decoder", "head"}


def test_mixed_precision_computes_in_bfloat16_and_detects_in_float32():
    outputs = model_checks.check_mixed_precision(
        build, images(batch=1), policy="mixed_bfloat16", float32_outputs=lambda key: True
    )
    assert outputs["detection_boxes"].shape == (1, 10, 4)


def test_the_registered_builder_and_a_few_training_steps_lower_the_loss():
    config = tiny_config()
    model = plugins.build_named(
        "models",
        "retinanet",
        config,
        "task.model",
        input_specs=keras.layers.InputSpec(shape=[None, SIZE, SIZE, 3]),
        l2_regularizer=keras.regularizers.L2(1e-5),
    )
    assert isinstance(model, RetinaNetModel)
    assert model.losses  # Weight decay reaches the kernels.
    # One object: a 24x24 box of class 2. Labels from the anchor labeler.
    anchors = {level: tf.constant(numpy_anchors(int(level))) for level in LEVELS}
    labeler = AnchorLabeler(match_threshold=0.5, unmatched_threshold=0.4)
    cls_t, box_t, _, cls_w, box_w = labeler.label_anchors(
        anchors, tf.constant([[8.0, 8.0, 40.0, 40.0]]), tf.constant([[2]])
    )
    assert float(tf.reduce_sum(box_w)) >= 1
    labels = {
        "cls_targets": {k: v[None] for k, v in cls_t.items()},
        "box_targets": {k: v[None] for k, v in box_t.items()},
        "cls_weights": cls_w[None],
        "box_weights": box_w[None],
    }
    optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    batch = images(batch=1, seed=3)
    history = []
    for _ in range(4):
        with tf.GradientTape() as tape:
            outputs = model(batch, training=True)
            loss = retinanet_losses(
                outputs, labels, num_classes=NUM_CLASSES, aux_losses=model.losses
            )["total_loss"]
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        history.append(float(loss))
    assert all(np.isfinite(history))
    assert history[-1] < history[0]


def test_missing_anchor_settings_are_a_clear_error():
    model = build()
    bare = RetinaNetModel(model.backbone, model.decoder, model.head, model.detection_generator)
    assert (bare.min_level, bare.max_level) == (3, 6)  # Taken from the head.
    with pytest.raises(ValueError, match="num_scales"):
        bare(images(), training=False)
    assert isinstance(model.detection_generator, MultilevelDetectionGenerator)


# Sizes of the COCO models (91 classes, 9 anchors per location). `exact` is the number of
# trainable parameters of tf-models-official 2.20's own model for the same config (counted
# with its `factory.build_retinanet`, its head built on features); `published` is Model
# Garden's table (official/vision/MODEL_GARDEN.md, "COCO Object Detection Baselines", Params
# (M)). Model Garden's own mobile model counts 2.34 M, not the 2.32 M its table shows.
@pytest.mark.parametrize(
    ("experiment", "exact", "published_millions"),
    [
        ("retinanet_resnetfpn_coco", 34_091_159, 34.0),
        ("retinanet_spinenet_coco", 21_831_488 + 6_711_895, 28.5),
        ("retinanet_mobile_coco", 2_268_708 + 68_871, 2.32),
    ],
)
def test_parameter_counts_match_model_garden(experiment, exact, published_millions):
    config = getattr(retinanet_configs, experiment)().task.model
    size = config.input_size[0]
    model = build_retinanet(keras.layers.InputSpec(shape=[None, size, size, 3]), config)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == exact
    assert abs(trainable / 1e6 - published_millions) < 0.1
