"""`SegmentationHead`: feature fusions, convolutions and logits against NumPy references."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_deeplab_layers import conv_same, resize_bilinear
from test_fpn import batch_norm_inference, randomize_weights

from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.configs.common import NormActivation
from garden_vision.configs.semantic_segmentation import SegmentationHead as HeadConfig
from garden_vision.modeling.heads.segmentation_heads import (
    SegmentationHead,
    build_segmentation_head,
)

NUM_CLASSES = 3


def features(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=shape).astype("float32") for key, shape in shapes.items()}


def trainable(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def built(head, inputs):
    head(inputs)
    randomize_weights(head)
    return head


def classify(head, x):
    kernel, bias = (np.asarray(w, np.float64) for w in head.classifier.get_weights())
    return conv_same(x, kernel) + bias


def test_without_fusion_it_reads_the_decoder_level():
    decoder = features({"3": (2, 8, 8, 5), "4": (2, 4, 4, 5)})
    head = built(SegmentationHead(NUM_CLASSES, level=3, num_convs=1, num_filters=4), ({}, decoder))
    logits = head(({}, decoder), training=False)
    assert tuple(logits.shape) == (2, 8, 8, NUM_CLASSES)
    assert logits.dtype == "float32"
    conv = np.asarray(head.segmentation_head_conv_0.kernel, np.float64)
    weights = [np.asarray(w, np.float64) for w in head.segmentation_head_norm_0.get_weights()]
    x = np.maximum(batch_norm_inference(conv_same(decoder["3"], conv), *weights), 0)
    np.testing.assert_allclose(logits, classify(head, x), rtol=1e-4, atol=1e-4)
    # A single tensor works as the decoder output too.
    np.testing.assert_allclose(head(({}, decoder["3"])), logits, rtol=1e-6)


@pytest.mark.parametrize("fusion", ["deeplabv3plus", "deeplabv3plus_sum_to_merge"])
def test_deeplabv3plus_fusion_matches_numpy(fusion):
    backbone = features({"2": (2, 8, 8, 6), "2/depthwise": (2, 8, 8, 9), "4": (2, 2, 2, 7)})
    decoder = features({"4": (2, 2, 2, 5)}, seed=1)
    head = SegmentationHead(
        NUM_CLASSES,
        level=4,
        num_convs=0,
        feature_fusion=fusion,
        low_level="2/depthwise",
        low_level_num_filters=5,
    )
    built(head, (backbone, decoder))
    logits = head((backbone, decoder), training=False)
    assert tuple(logits.shape) == (2, 8, 8, NUM_CLASSES)
    low = conv_same(backbone["2/depthwise"], np.asarray(head.dlv3p_conv.kernel, np.float64))
    weights = [np.asarray(w, np.float64) for w in head.dlv3p_norm.get_weights()]
    low = np.maximum(batch_norm_inference(low, *weights), 0)
    high = resize_bilinear(decoder["4"].astype(np.float64), 8, 8)
    fused = np.concatenate([high, low], -1) if fusion == "deeplabv3plus" else high + low
    np.testing.assert_allclose(logits, classify(head, fused), rtol=1e-4, atol=1e-4)


def test_sum_to_merge_needs_as_many_low_level_filters_as_decoder_channels():
    head = SegmentationHead(
        NUM_CLASSES, level=4, feature_fusion="deeplabv3plus_sum_to_merge", low_level_num_filters=4
    )
    inputs = (features({"2": (1, 8, 8, 6)}), features({"4": (1, 2, 2, 5)}))
    with pytest.raises(ConfigError, match="low_level_num_filters"):
        head(inputs)


@pytest.mark.parametrize(("level", "size"), [(3, 8), (2, 16)])
def test_pyramid_fusion_sums_every_level_resized_to_the_target(level, size):
    decoder = features({"3": (1, 8, 8, 4), "4": (1, 4, 4, 4), "5": (1, 2, 2, 4)})
    head = built(
        SegmentationHead(NUM_CLASSES, level=level, num_convs=0, feature_fusion="pyramid_fusion"),
        ({}, decoder),
    )
    logits = head(({}, decoder), training=False)
    fused = sum(
        value if int(key) == level else resize_bilinear(value.astype(np.float64), size, size)
        for key, value in decoder.items()
    )
    np.testing.assert_allclose(logits, classify(head, fused), rtol=1e-4, atol=1e-4)


def test_panoptic_fpn_fusion_layers_and_size_by_hand():
    # Kirillov et al., 2019: level L gets max(1, L - target) 3x3 convolutions (with bias and
    # 32-group normalization), each followed by 2x upsampling while L is above the target.
    channels, filters = 8, 32
    decoder = features(
        {str(level): (1, 32 // 2**level, 32 // 2**level, channels) for level in (2, 3, 4)}
    )
    head = SegmentationHead(
        NUM_CLASSES,
        level=2,
        num_convs=0,
        num_filters=filters,
        feature_fusion="panoptic_fpn_fusion",
        decoder_min_level=2,
        decoder_max_level=4,
        num_decoder_filters=channels,
    )
    logits = head(({}, decoder), training=False)
    assert tuple(logits.shape) == (1, 8, 8, NUM_CLASSES)
    first = 9 * channels * filters + filters + 2 * filters
    second = 9 * filters * filters + filters + 2 * filters
    assert trainable(head) == 3 * first + second + filters * NUM_CLASSES + NUM_CLASSES
    assert isinstance(head.panoptic_fpn_fusion_l4_norm_1, keras.layers.GroupNormalization)
    assert head.panoptic_fpn_fusion_l4_norm_1.groups == 32


def test_depthwise_convolutions_size_by_hand_and_upsampling_is_nearest():
    backbone = features({"2": (1, 8, 8, 6)})
    decoder = features({"4": (1, 2, 2, 10)})
    settings = {
        "num_classes": NUM_CLASSES,
        "level": 4,
        "num_convs": 2,
        "num_filters": 16,
        "use_depthwise_convolution": True,
        "feature_fusion": "deeplabv3plus",
        "low_level_num_filters": 4,
    }
    head = built(SegmentationHead(**settings), (backbone, decoder))
    fused = 10 + 4
    expected = (
        (6 * 4 + 2 * 4)  # The DeepLabV3+ projection and its batch normalization.
        + (9 * fused + 2 * fused + fused * 16 + 2 * 16)  # Depthwise 3x3 + BN, 1x1 + BN.
        + (9 * 16 + 2 * 16 + 16 * 16 + 2 * 16)
        + (16 * NUM_CLASSES + NUM_CLASSES)  # The logits.
    )
    assert trainable(head) == expected
    upsampled = SegmentationHead(**settings, upsample_factor=2)
    upsampled((backbone, decoder))
    upsampled.set_weights(head.get_weights())
    logits = np.asarray(head((backbone, decoder)))
    np.testing.assert_allclose(
        upsampled((backbone, decoder)),
        logits.repeat(2, axis=1).repeat(2, axis=2),
        rtol=1e-5,
        atol=1e-6,
    )


def test_logit_activations():
    decoder = features({"3": (1, 4, 4, 5)})
    logits = {}
    for activation in (None, "sigmoid", "softmax"):
        head = SegmentationHead(NUM_CLASSES, level=3, num_convs=0, logit_activation=activation)
        head(({}, decoder))
        if activation is None:
            weights = head.get_weights()
        head.set_weights(weights)
        logits[activation] = np.asarray(head(({}, decoder)), np.float64)
    np.testing.assert_allclose(logits["sigmoid"], 1 / (1 + np.exp(-logits[None])), rtol=1e-5)
    softmax = np.exp(logits[None]) / np.exp(logits[None]).sum(-1, keepdims=True)
    np.testing.assert_allclose(logits["softmax"], softmax, rtol=1e-5)


def test_unknown_height_and_width_in_a_tf_function():
    head = SegmentationHead(NUM_CLASSES, level=4, feature_fusion="deeplabv3plus", num_filters=8)
    spec = tf.TensorSpec

    @tf.function(
        input_signature=[
            {"2": spec([None, None, None, 6], tf.float32)},
            {"4": spec([None, None, None, 5], tf.float32)},
        ]
    )
    def run(backbone, decoder):
        return head((backbone, decoder), training=False)

    for low, high in ((8, 2), (12, 3)):
        inputs = features({"2": (2, low, low + 4, 6)}), features({"4": (2, high, high + 1, 5)})
        assert tuple(run(*inputs).shape) == (2, low, low + 4, NUM_CLASSES)


def make_wrapped_head():
    """The head in a functional model of dict inputs, for the shared checks."""
    low = keras.Input((8, 8, 6), name="low")
    depthwise = keras.Input((8, 8, 4), name="depthwise")
    high = keras.Input((2, 2, 5), name="high")
    head = SegmentationHead(
        NUM_CLASSES,
        level=4,
        num_convs=1,
        num_filters=8,
        use_depthwise_convolution=True,
        feature_fusion="deeplabv3plus",
        low_level="2/depthwise",
        low_level_num_filters=3,
        upsample_factor=2,
        activation="swish",
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name="segmentation_head",
    )
    logits = head(({"2": low, "2/depthwise": depthwise}, {"4": high}))
    return keras.Model({"low": low, "depthwise": depthwise, "high": high}, logits)


def test_shared_checks_config_checkpoint_keras_file_train_step_and_mixed_precision(tmp_path):
    inputs = features({"low": (2, 8, 8, 6), "depthwise": (2, 8, 8, 4), "high": (2, 2, 2, 5)})
    model = model_checks.run_model_test(
        make_wrapped_head,
        inputs,
        (2, 16, 16, NUM_CLASSES),
        tmp_path,
        mixed_precision_policy="mixed_bfloat16",
        float32_outputs=lambda key: True,  # The logits are float32.
    )
    config = model.get_layer("segmentation_head").get_config()
    assert (config["low_level"], config["upsample_factor"], config["activation"]) == (
        "2/depthwise",
        2,
        "swish",
    )


def test_builder_takes_the_config_fields_and_norm_activation():
    config = HeadConfig(
        level=4,
        num_convs=1,
        num_filters=32,
        prediction_kernel_size=3,
        feature_fusion="deeplabv3plus",
        low_level=2,
        low_level_num_filters=8,
    )
    fields = {name: getattr(config, name) for name in config.as_dict()}
    norm = NormActivation(activation="swish", norm_momentum=0.9, norm_epsilon=1e-4)
    specs = ({"2": (None, 8, 8, 6)}, {"4": (None, 2, 2, 5)})
    head = build_segmentation_head(specs, 5, norm, keras.regularizers.L2(1e-4), **fields)
    assert (head.num_classes, head.level, head.prediction_kernel_size) == (5, 4, 3)
    assert (head.activation, head.norm_momentum, head.norm_epsilon) == ("swish", 0.9, 1e-4)
    head((features({"2": (1, 8, 8, 6)}), features({"4": (1, 2, 2, 5)})))
    # Kernels of the fusion projection, the 3x3 convolution and the classifier.
    assert len(head.losses) == 3
    # The builder's defaults are the config's; Panoptic FPN reads the decoder's width.
    default = build_segmentation_head(specs, 5, NormActivation())
    assert (default.level, default.num_convs, default.low_level_num_filters) == (3, 2, 48)
    panoptic = build_segmentation_head(
        ({}, {"2": (None, 8, 8, 64), "3": (None, 4, 4, 64)}),
        5,
        NormActivation(),
        level=2,
        feature_fusion="panoptic_fpn_fusion",
        decoder_min_level=2,
        decoder_max_level=3,
    )
    assert panoptic.num_decoder_filters == 64


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"feature_fusion": "fpn"}, "feature_fusion"),
        ({"logit_activation": "relu"}, "logit_activation"),
        ({"num_classes": 0}, "num_classes"),
        ({"upsample_factor": 0}, "upsample_factor"),
        ({"feature_fusion": "panoptic_fpn_fusion"}, "decoder_min_level"),
        (
            {
                "feature_fusion": "panoptic_fpn_fusion",
                "decoder_min_level": 2,
                "decoder_max_level": 3,
                "level": 3,
            },
            "level <= decoder_min_level",
        ),
        (
            {
                "feature_fusion": "panoptic_fpn_fusion",
                "decoder_min_level": 2,
                "decoder_max_level": 3,
                "num_filters": 48,
            },
            "multiple of 32",
        ),
        ({"feature_fusion": "pyramid_fusion", "level": "2/depthwise"}, "level"),
    ],
)
def test_bad_settings_are_clear_errors(settings, message):
    arguments = {"num_classes": NUM_CLASSES, "level": 2, **settings}
    with pytest.raises(ConfigError, match=message):
        SegmentationHead(**arguments)


def test_a_missing_endpoint_is_a_clear_error():
    head = SegmentationHead(NUM_CLASSES, level=4, feature_fusion="deeplabv3plus", low_level=3)
    with pytest.raises(ValueError, match=r"low_level.*\['2', '4'\]"):
        head((features({"2": (1, 8, 8, 6), "4": (1, 2, 2, 6)}), features({"4": (1, 2, 2, 5)})))
