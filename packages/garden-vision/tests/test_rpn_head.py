"""`RPNHead`: shapes, wiring against NumPy, sizes by hand, initialization, saving, builder."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from head_checks import conv3x3, n_params, pyramid_features

from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.heads.dense_prediction_heads import RPNHead, build_rpn_head

SIZES = {"2": 8, "3": 4, "4": 2}


def features(channels=8, batch=2, seed=0, sizes=SIZES):
    return pyramid_features(sizes, channels, batch, seed)


def tiny_head(**kwargs):
    settings = {
        "min_level": 2,
        "max_level": 4,
        "num_anchors_per_location": 3,
        "num_convs": 1,
        "num_filters": 8,
    }
    return RPNHead(**{**settings, **kwargs})


def test_scores_and_boxes_per_level_in_float32():
    scores, boxes = tiny_head()(features(), training=False)
    assert {k: tuple(v.shape) for k, v in scores.items()} == {
        "2": (2, 8, 8, 3),
        "3": (2, 4, 4, 3),
        "4": (2, 2, 2, 3),
    }
    assert {k: tuple(v.shape) for k, v in boxes.items()} == {
        "2": (2, 8, 8, 12),
        "3": (2, 4, 4, 12),
        "4": (2, 2, 2, 12),
    }
    assert all(v.dtype == "float32" for v in [*scores.values(), *boxes.values()])


def test_forward_matches_numpy_with_shared_conv_and_per_level_batch_norm():
    epsilon = 1e-3
    head = RPNHead(
        min_level=2, max_level=3, num_anchors_per_location=2, num_filters=3, norm_epsilon=epsilon
    )
    inputs = features(channels=3, sizes={"2": 4, "3": 2}, seed=1)
    head(inputs)
    rng = np.random.default_rng(2)
    conv_kernel, conv_bias = rng.normal(size=(3, 3, 3, 3)) * 0.3, rng.normal(size=3)
    score_kernel, score_bias = rng.normal(size=(1, 1, 3, 2)), rng.normal(size=2)
    box_kernel, box_bias = rng.normal(size=(1, 1, 3, 8)), rng.normal(size=8)
    head.rpn_tower.conv_0_0.set_weights([conv_kernel, conv_bias])
    head.rpn_scores.set_weights([score_kernel, score_bias])
    head.rpn_boxes.set_weights([box_kernel, box_bias])
    norms = []
    for level_index in range(2):
        gamma, beta = rng.normal(size=3), rng.normal(size=3)
        mean, variance = rng.normal(size=3), rng.random(3) + 0.5
        getattr(head.rpn_tower, f"norm_{level_index}_0").set_weights([gamma, beta, mean, variance])
        norms.append((gamma, beta, mean, variance))

    scores, boxes = head(inputs, training=False)
    for level_index, level in enumerate(("2", "3")):
        gamma, beta, mean, variance = norms[level_index]
        x = conv3x3(inputs[level].astype(np.float64), conv_kernel, conv_bias)
        x = np.maximum((x - mean) / np.sqrt(variance + epsilon) * gamma + beta, 0)
        np.testing.assert_allclose(
            np.asarray(scores[level]), x @ score_kernel[0, 0] + score_bias, rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(
            np.asarray(boxes[level]), x @ box_kernel[0, 0] + box_bias, rtol=1e-4, atol=1e-4
        )


def test_without_convs_the_predictors_read_the_features():
    head = tiny_head(num_convs=0)
    inputs = features(channels=5)
    scores, boxes = head(inputs)
    assert n_params(head) == (5 * 3 + 3) + (5 * 12 + 12)
    kernel, bias = head.rpn_scores.get_weights()
    np.testing.assert_allclose(
        np.asarray(scores["3"]), inputs["3"] @ kernel[0, 0] + bias, rtol=1e-5, atol=1e-9
    )
    assert boxes["4"].shape == (2, 2, 2, 12)


@pytest.mark.parametrize(
    ("separable", "trainable", "total"), [(False, 596_495, 599_055), (True, 75_023, 77_583)]
)
def test_mask_rcnn_resnet_fpn_head_size_by_hand(separable, trainable, total):
    # Mask R-CNN ResNet-50-FPN's RPN head: levels 2-6, 1 conv of 256, 3 anchors per place.
    # The same totals were counted on tf-models-official 2.20's RPNHead.
    filters, anchors, levels = 256, 3, 5
    if separable:  # depthwise 3x3 + pointwise + bias; 1x1 predictors: depthwise 1x1 too.
        conv = 9 * filters + filters * filters + filters
        predictors = (filters + filters * anchors + anchors) + (
            filters + filters * 4 * anchors + 4 * anchors
        )
    else:
        conv = 9 * filters * filters + filters
        predictors = (filters * anchors + anchors) + (filters * 4 * anchors + 4 * anchors)
    norms_trainable = levels * 2 * filters  # gamma, beta per level.
    assert conv + norms_trainable + predictors == trainable
    assert trainable + levels * 2 * filters == total  # + moving mean and variance.

    head = RPNHead(
        min_level=2, max_level=6, num_anchors_per_location=anchors, use_separable_conv=separable
    )
    head.build({str(level): (None, 4, 4, filters) for level in range(2, 7)})
    assert n_params(head, trainable_only=True) == trainable
    assert n_params(head) == total


def test_initialization_follows_model_garden():
    head = RPNHead(min_level=2, max_level=3, num_anchors_per_location=16, num_filters=64)
    head.build({"2": (None, 4, 4, 64), "3": (None, 2, 2, 64)})
    tower = keras.ops.convert_to_numpy(head.rpn_tower.conv_0_0.kernel)
    assert 0.009 < tower.std() < 0.011  # N(0, 0.01)
    for predictor in (head.rpn_scores, head.rpn_boxes):
        kernel = keras.ops.convert_to_numpy(predictor.kernel)
        assert 0.5e-5 < kernel.std() < 1.5e-5  # N(0, 1e-5)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(predictor.bias), 0.0)


def test_unknown_batch_and_sizes_in_a_tf_function():
    head = tiny_head()
    signature = {level: tf.TensorSpec([None, None, None, 8]) for level in SIZES}
    predict = tf.function(lambda x: head(x, training=False), input_signature=[signature])
    scores, boxes = predict({k: tf.constant(v) for k, v in features(batch=3).items()})
    assert scores["3"].shape == (3, 4, 4, 3)
    assert boxes["2"].shape == (3, 8, 8, 12)


def test_shared_checks_build_restore_train_save_and_mixed_precision(tmp_path):
    inputs = features(sizes={"2": 4, "3": 2, "4": 1})
    model_checks.run_model_test(
        lambda: tiny_head(num_convs=2),
        inputs,
        (
            {"2": (2, 4, 4, 3), "3": (2, 2, 2, 3), "4": (2, 1, 1, 3)},
            {"2": (2, 4, 4, 12), "3": (2, 2, 2, 12), "4": (2, 1, 1, 12)},
        ),
        tmp_path,
        # A SavedModel signature cannot take inputs named "2", "3", ...: the `.keras` file
        # round trip below covers saving.
        run_saving=False,
        mixed_precision_policy="mixed_bfloat16",
        float32_outputs=lambda key: True,
    )
    model_checks.check_keras_file_round_trip(tiny_head(), inputs, tmp_path)


def test_config_round_trip_keeps_every_setting():
    head = tiny_head(
        use_separable_conv=True,
        activation="swish",
        use_sync_bn=True,
        norm_momentum=0.9,
        norm_epsilon=1e-4,
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name="rpn",
    )
    rebuilt = RPNHead.from_config(head.get_config())
    assert rebuilt.get_config() == head.get_config()
    assert isinstance(rebuilt.kernel_regularizer, keras.regularizers.L2)
    assert rebuilt.name == "rpn"


def test_the_builder_takes_norm_activation_and_config_settings():
    head = build_rpn_head(
        [(None, 8, 8, 16), (None, 4, 4, 16)],
        num_classes=91,
        norm_activation_config=NormActivation(
            activation="swish", use_sync_bn=False, norm_momentum=0.997, norm_epsilon=1e-4
        ),
        l2_regularizer=keras.regularizers.L2(1e-4),
        min_level=3,
        max_level=4,
        num_anchors_per_location=9,
        num_convs=2,
        num_filters=16,
    )
    assert isinstance(head, RPNHead)
    assert (head.activation, head.norm_momentum, head.norm_epsilon) == ("swish", 0.997, 1e-4)
    assert (head.num_convs, head.num_filters, head.use_sync_bn) == (2, 16, False)
    scores, boxes = head(features(channels=16, sizes={"3": 8, "4": 4}))
    assert scores["3"].shape == (2, 8, 8, 9)
    assert boxes["4"].shape == (2, 4, 4, 36)
    assert len(head.losses) > 0  # The L2 regularizer reaches the kernels.

    defaults = build_rpn_head(
        {"2": (None, 4, 4, 8), "3": (None, 2, 2, 8)},
        None,
        NormActivation(),
        min_level=2,
        max_level=3,
        num_anchors_per_location=3,
    )
    # Model Garden's `configs.maskrcnn.RPNHead` defaults.
    assert (defaults.num_convs, defaults.num_filters, defaults.use_separable_conv) == (
        1,
        256,
        False,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_level": 5}, "min_level"),
        ({"num_anchors_per_location": 0}, "num_anchors_per_location"),
        ({"num_anchors_per_location": {"2": 3}}, "num_anchors_per_location"),
        ({"num_convs": -1}, "num_convs"),
        ({"num_filters": 0}, "num_filters"),
        ({"activation": "sparkle"}, "sparkle"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        tiny_head(**kwargs)


def test_bad_features_are_clear_errors():
    with pytest.raises(ConfigError, match=r"RPNHead needs feature levels .*\['4'\] are missing"):
        tiny_head()(features(sizes={"2": 8, "3": 4}))
    mixed = features()
    mixed["3"] = np.zeros((2, 4, 4, 5), "float32")
    with pytest.raises(ConfigError, match="one width"):
        tiny_head()(mixed)
    with pytest.raises(ConfigError, match="rank-4 shapes"):
        build_rpn_head(
            [(None, 8, 8, 8)],
            None,
            NormActivation(),
            min_level=2,
            max_level=3,
            num_anchors_per_location=3,
        )
