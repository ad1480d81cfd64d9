"""`RetinaNetHead`: shapes, wiring against NumPy, sizes by hand, initialization, saving."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from head_checks import conv3x3, n_params, pyramid_features

from garden_core import registry
from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.configs.common import NormActivation
from garden_vision.configs.retinanet import AttributeHead
from garden_vision.modeling.heads import build_head
from garden_vision.modeling.heads.dense_prediction_heads import (
    RetinaNetHead,
    build_retinanet_head,
)

SIZES = {"3": 8, "4": 4, "5": 2}


def features(channels=8, batch=2, seed=0, sizes=SIZES):
    return pyramid_features(sizes, channels, batch, seed)


def tiny_head(**kwargs):
    settings = {
        "min_level": 3,
        "max_level": 5,
        "num_classes": 3,
        "num_anchors_per_location": 2,
        "num_convs": 2,
        "num_filters": 8,
    }
    return RetinaNetHead(**{**settings, **kwargs})


def test_output_shapes_per_level_and_float32_logits():
    head = tiny_head()
    scores, boxes, attributes = head(features(), training=False)
    assert {k: v.shape for k, v in scores.items()} == {
        "3": (2, 8, 8, 6),
        "4": (2, 4, 4, 6),
        "5": (2, 2, 2, 6),
    }
    assert {k: v.shape for k, v in boxes.items()} == {
        "3": (2, 8, 8, 8),
        "4": (2, 4, 4, 8),
        "5": (2, 2, 2, 8),
    }
    assert attributes == {}
    assert all(v.dtype == "float32" for v in [*scores.values(), *boxes.values()])


def test_class_logits_start_at_the_one_percent_prior():
    head = tiny_head()
    scores, boxes, _ = head(features(), training=False)
    # -log((1 - 0.01) / 0.01) = -log(99) = -4.59512 (Lin et al., 2017, section 4.1).
    bias = keras.ops.convert_to_numpy(head.scores.bias)
    np.testing.assert_allclose(bias, np.full(6, -4.5951199), rtol=1e-6)
    probabilities = 1 / (1 + np.exp(-np.asarray(scores["3"])))
    np.testing.assert_allclose(probabilities, 0.01, atol=5e-4)
    np.testing.assert_allclose(np.asarray(boxes["4"]), 0.0, atol=1e-2)
    kernel = keras.ops.convert_to_numpy(head.classnet.conv_0_0.kernel)
    assert 0.007 < kernel.std() < 0.013  # N(0, 0.01)


def test_forward_matches_numpy_with_per_level_batch_norm():
    epsilon = 1e-3
    head = RetinaNetHead(
        min_level=3,
        max_level=4,
        num_classes=2,
        num_anchors_per_location=1,
        num_convs=1,
        num_filters=3,
        norm_epsilon=epsilon,
    )
    inputs = features(channels=3, sizes={"3": 4, "4": 2}, seed=1)
    head(inputs)
    rng = np.random.default_rng(2)
    tower_kernel, tower_bias = rng.normal(size=(3, 3, 3, 3)) * 0.3, rng.normal(size=3)
    class_kernel, class_bias = rng.normal(size=(3, 3, 3, 2)) * 0.3, rng.normal(size=2)
    head.classnet.conv_0_0.set_weights([tower_kernel, tower_bias])
    head.scores.set_weights([class_kernel, class_bias])
    norms = []
    for level_index in range(2):
        gamma, beta = rng.normal(size=3), rng.normal(size=3)
        mean, variance = rng.normal(size=3), rng.random(3) + 0.5
        getattr(head.classnet, f"norm_{level_index}_0").set_weights([gamma, beta, mean, variance])
        norms.append((gamma, beta, mean, variance))

    scores, _, _ = head(inputs, training=False)
    for level_index, level in enumerate(("3", "4")):
        gamma, beta, mean, variance = norms[level_index]
        x = conv3x3(inputs[level].astype(np.float64), tower_kernel, tower_bias)
        x = np.maximum((x - mean) / np.sqrt(variance + epsilon) * gamma + beta, 0)
        expected = conv3x3(x, class_kernel, class_bias)
        np.testing.assert_allclose(np.asarray(scores[level]), expected, rtol=1e-4, atol=1e-4)


def test_parameter_counts_by_hand_shared_and_per_level():
    channels, filters, convs, levels, classes, anchors = 8, 8, 2, 3, 3, 2
    conv = 9 * channels * filters + filters  # Input width == num_filters here.
    norm = 4 * filters  # gamma, beta, moving mean, moving variance.
    predictors = (9 * filters * anchors * classes + anchors * classes) + (
        9 * filters * anchors * 4 + anchors * 4
    )
    shared = tiny_head()
    shared(features())
    assert n_params(shared) == 2 * (convs * conv + levels * convs * norm) + predictors

    per_level = tiny_head(share_level_convs=False)
    per_level(features())
    assert n_params(per_level) == 2 * levels * (convs * conv + convs * norm) + levels * predictors


def test_separable_convolutions_have_depthwise_and_pointwise_kernels():
    head = tiny_head(use_separable_conv=True, num_convs=1)
    head(features())
    separable = 9 * 8 + 8 * 8 + 8  # depthwise 3x3 per channel, pointwise, bias
    predictors = (9 * 8 + 8 * 6 + 6) + (9 * 8 + 8 * 8 + 8)
    assert n_params(head) == 2 * (separable + 3 * 4 * 8) + predictors


def test_attribute_heads_share_towers_by_name_and_the_class_tower():
    heads = [
        AttributeHead(name="depth", type="regression", size=1, prediction_tower_name="geo"),
        {"name": "angle", "type": "regression", "size": 2, "prediction_tower_name": "geo"},
        {"name": "kind", "type": "classification", "size": 4},
    ]
    head = tiny_head(attribute_heads=heads)
    scores, _, attributes = head(features())
    assert sorted(attributes) == ["angle", "depth", "kind"]
    assert attributes["depth"]["3"].shape == (2, 8, 8, 2)
    assert attributes["angle"]["5"].shape == (2, 2, 2, 4)
    assert attributes["kind"]["4"].shape == (2, 4, 4, 8)
    # One `geo` tower, one `kind` tower: 2 x (2 convs + 3 levels x 2 norms) over the plain head.
    plain = tiny_head()
    plain(features())
    conv, norm = 9 * 8 * 8 + 8, 4 * 8
    predictors = (9 * 8 * 2 + 2) + (9 * 8 * 4 + 4) + (9 * 8 * 8 + 8)
    assert n_params(head) == n_params(plain) + 2 * (2 * conv + 6 * norm) + predictors

    shared = tiny_head(attribute_heads=[heads[2]], share_classification_heads=True)
    shared(features())
    assert n_params(shared) == n_params(plain) + 9 * 8 * 8 + 8
    bias = keras.ops.convert_to_numpy(shared.attribute_predictor_0.bias)
    np.testing.assert_allclose(bias, -math.log(99), rtol=1e-6)


def test_per_level_anchor_counts_without_shared_convs():
    head = tiny_head(num_anchors_per_location={"3": 1, "4": 2, "5": 3}, share_level_convs=False)
    scores, boxes, _ = head(features())
    assert [scores[k].shape[-1] for k in ("3", "4", "5")] == [3, 6, 9]
    assert [boxes[k].shape[-1] for k in ("3", "4", "5")] == [4, 8, 12]


def test_shared_checks_build_restore_train_save_and_mixed_precision(tmp_path):
    heads = [{"name": "depth", "type": "regression", "size": 1}]
    inputs = features(channels=8, sizes={"3": 4, "4": 2, "5": 1})
    model_checks.run_model_test(
        lambda: tiny_head(attribute_heads=heads),
        inputs,
        (
            {"3": (2, 4, 4, 6), "4": (2, 2, 2, 6), "5": (2, 1, 1, 6)},
            {"3": (2, 4, 4, 8), "4": (2, 2, 2, 8), "5": (2, 1, 1, 8)},
            {"depth": {"3": (2, 4, 4, 2), "4": (2, 2, 2, 2), "5": (2, 1, 1, 2)}},
        ),
        tmp_path,
        # A SavedModel signature cannot take inputs named "3", "4", ...: the `.keras` file
        # round trip below covers saving.
        run_saving=False,
        mixed_precision_policy="mixed_bfloat16",
        float32_outputs=lambda key: True,
    )
    model_checks.check_keras_file_round_trip(tiny_head(attribute_heads=heads), inputs, tmp_path)


def test_the_registered_builder_takes_its_settings_from_the_config():
    assert "retinanet" in registry.registry("heads").names()
    head = build_head(
        "retinanet",
        "task.model.head",
        input_specs=[(None, 8, 8, 16), (None, 4, 4, 16)],
        num_classes=5,
        norm_activation_config=NormActivation(activation="swish", norm_momentum=0.9),
        l2_regularizer=keras.regularizers.L2(1e-4),
        settings={
            "min_level": 3,
            "max_level": 4,
            "num_anchors_per_location": 9,
            "num_convs": 1,
            "num_filters": 16,
            "use_separable_conv": False,
            "attribute_heads": [AttributeHead(name="depth")],
            "share_classification_heads": False,
            "share_level_convs": True,
        },
    )
    assert isinstance(head, RetinaNetHead)
    assert (head.activation, head.norm_momentum, head.num_classes) == ("swish", 0.9, 5)
    scores, _, attributes = head(features(channels=16, sizes={"3": 8, "4": 4}))
    assert scores["3"].shape == (2, 8, 8, 45)
    assert attributes["depth"]["4"].shape == (2, 4, 4, 9)
    assert len(head.losses) > 0  # The L2 regularizer reaches the kernels.


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_level": 6}, "min_level"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_anchors_per_location": {"3": 1, "4": 2, "5": 2}}, "share_level_convs=False"),
        ({"num_anchors_per_location": {"3": 1}}, r"levels \['4', '5'\]"),
        ({"attribute_heads": [{"name": "x", "type": "ranking"}]}, "ranking"),
        ({"attribute_heads": [{"name": "x"}, {"name": "x"}]}, "repeat"),
        ({"attribute_heads": [{"name": "x", "sizes": 2}]}, "sizes"),
        (
            {
                "attribute_heads": [{"name": "x", "prediction_tower_name": "t"}],
                "share_classification_heads": True,
            },
            "prediction_tower_name",
        ),
        ({"activation": "sparkle"}, "sparkle"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        tiny_head(**kwargs)


def test_bad_features_are_clear_errors():
    with pytest.raises(ConfigError, match=r"levels \['5'\] are missing"):
        tiny_head()(features(sizes={"3": 8, "4": 4}))
    mixed = features()
    mixed["4"] = np.zeros((2, 4, 4, 5), "float32")
    with pytest.raises(ConfigError, match="one width"):
        tiny_head()(mixed)
    with pytest.raises(ConfigError, match="rank-4 shapes"):
        build_retinanet_head(
            [(None, 8, 8, 8)],
            num_classes=3,
            norm_activation_config=NormActivation(),
            min_level=3,
            max_level=4,
            num_anchors_per_location=9,
        )


@pytest.mark.parametrize(
    ("num_filters", "separable", "trainable", "total"),
    [(256, False, 6_711_895, 6_732_375), (48, True, 68_871, 72_711)],
)
def test_coco_head_sizes_match_model_garden(num_filters, separable, trainable, total):
    # Counted on tf-models-official 2.20's RetinaNetHead with the same settings (levels 3-7,
    # 91 classes, 9 anchors, 4 convolutions): RetinaNet ResNet-FPN's head and the mobile one.
    head = RetinaNetHead(
        min_level=3,
        max_level=7,
        num_classes=91,
        num_anchors_per_location=9,
        num_filters=num_filters,
        use_separable_conv=separable,
    )
    head.build({str(level): (None, 2, 2, num_filters) for level in range(3, 8)})
    assert sum(int(np.prod(w.shape)) for w in head.trainable_weights) == trainable
    assert n_params(head) == total
