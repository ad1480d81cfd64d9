"""FPN decoder, nearest upsampling, and the multi-level outputs of ResNet and MobileNet.

The NumPy helpers here (same-padded convolution, inference batch norm, the RetinaNet head's
parameter count) are also used by the NAS-FPN and SpineNet tests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import keras
import numpy as np
import pytest

from garden_core.config import Config, ConfigError
from garden_vision.configs.backbones import Backbone, MobileNet, ResNet
from garden_vision.configs.common import NormActivation
from garden_vision.configs.decoders import FPN as FPNConfig
from garden_vision.configs.decoders import Decoder
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.decoders.factory import build_decoder
from garden_vision.modeling.decoders.fpn import FPN
from garden_vision.modeling.decoders.identity import Identity
from garden_vision.modeling.layers.resampling import NearestUpsampling, upsampling_layer
from garden_vision.testing import run_backbone_test

# --- NumPy references -------------------------------------------------------------------


def conv2d_same(x, kernel, bias=None, stride=1):
    """TensorFlow's "same"-padded 2-D convolution in NumPy (x: NHWC, kernel: HWIO)."""
    size = kernel.shape[0]
    batch, height, width, _ = x.shape
    out_h, out_w = math.ceil(height / stride), math.ceil(width / stride)
    pad_h = max((out_h - 1) * stride + size - height, 0)
    pad_w = max((out_w - 1) * stride + size - width, 0)
    padded = np.pad(
        x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    )
    out = np.zeros((batch, out_h, out_w, kernel.shape[-1]))
    for i in range(size):
        for j in range(size):
            window = padded[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride]
            out += np.einsum("bhwc,cf->bhwf", window, kernel[i, j])
    return out if bias is None else out + bias


def batch_norm_inference(x, gamma, beta, mean, variance, epsilon=1e-3):
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def upsample_nearest(x, scale):
    return np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)


def randomize_weights(model, seed=0):
    """Random weights everywhere (positive moving variances), so every path matters."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(0, 0.5, size=weight.shape)
        if "variance" in weight.path:
            value = rng.uniform(0.5, 1.5, size=weight.shape)
        weight.assign(value.astype("float32"))


def layer_weights(model, name):
    return [np.asarray(w, np.float64) for w in model.get_layer(name).get_weights()]


def retinanet_head_params(
    num_filters, num_convs, num_classes, num_anchors, num_levels, separable=False, kernel=3
):
    """Trainable parameters of RetinaNet's class and box subnets (Lin et al., 2017).

    Each subnet: `num_convs` 3x3 convolutions with bias shared across levels, each followed
    by a batch normalization (gamma, beta) per level, as Model Garden's RetinaNetHead; then
    a 3x3 prediction convolution with bias to `num_anchors * num_classes` (class) or
    `num_anchors * 4` (box) channels. Separable convolutions have a depthwise kernel
    (depth multiplier 1), a pointwise kernel and a bias.
    """

    def conv(in_channels, out_channels):
        if separable:
            return kernel * kernel * in_channels + in_channels * out_channels + out_channels
        return kernel * kernel * in_channels * out_channels + out_channels

    tower = num_convs * conv(num_filters, num_filters) + num_levels * num_convs * 2 * num_filters
    return (
        2 * tower
        + conv(num_filters, num_anchors * num_classes)
        + conv(num_filters, num_anchors * 4)
    )


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@contextlib.contextmanager
def shapes_only():
    """Builds models with their variables' shapes but without initializing them."""
    with keras.StatelessScope(initialize_variables=False):
        yield
    keras.utils.clear_session()


# --- Tests ------------------------------------------------------------------------------


def _features(specs, seed=0):
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=(2, *shape[1:])).astype("float32") for key, shape in specs.items()}


SPECS = {
    "2": (None, 32, 32, 4),
    "3": (None, 16, 16, 6),
    "4": (None, 8, 8, 10),
    "5": (None, 4, 4, 12),
}


def test_nearest_upsampling_repeats_pixels_like_numpy():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype("float32")
    for scale in (1, 2, 4):
        expected = upsample_nearest(x, scale)
        np.testing.assert_array_equal(np.asarray(NearestUpsampling(scale)(x)), expected)
        keras_layer = upsampling_layer(scale, use_keras_layer=True)
        assert isinstance(keras_layer, keras.layers.UpSampling2D)
        np.testing.assert_array_equal(np.asarray(keras_layer(x)), expected)
    assert NearestUpsampling(3).compute_output_shape((None, 2, None, 5)) == (None, 6, None, 5)
    with pytest.raises(ValueError, match="positive integer"):
        NearestUpsampling(1.5)


def test_fpn_shared_checks(tmp_path):
    run_backbone_test(
        FPN,
        init_kwargs={"input_specs": SPECS, "min_level": 3, "max_level": 7, "num_filters": 8},
        input_data=_features(SPECS),
        expected_output_shapes={
            "3": (2, 16, 16, 8),
            "4": (2, 8, 8, 8),
            "5": (2, 4, 4, 8),
            "6": (2, 2, 2, 8),
            "7": (2, 1, 1, 8),
        },
        tmp_path=tmp_path,
    )


def test_fpn_matches_a_numpy_reference():
    specs = {key: SPECS[key] for key in ("3", "4", "5")}
    model = FPN(input_specs=specs, min_level=3, max_level=7, num_filters=5)
    randomize_weights(model)
    features = _features(specs, seed=1)
    outputs = {k: np.asarray(v) for k, v in model(features, training=False).items()}

    def conv(name, x, stride=1):
        kernel, bias = layer_weights(model, name)
        return conv2d_same(x, kernel, bias, stride)

    lateral = {level: conv(f"lateral_{level}", features[str(level)]) for level in (3, 4, 5)}
    merged = {5: lateral[5]}
    merged[4] = upsample_nearest(merged[5], 2) + lateral[4]
    merged[3] = upsample_nearest(merged[4], 2) + lateral[3]
    pyramid = {level: conv(f"post_hoc_{level}", merged[level]) for level in (3, 4, 5)}
    pyramid[6] = conv("coarser_6", pyramid[5], stride=2)
    pyramid[7] = conv("coarser_7", np.maximum(pyramid[6], 0.0), stride=2)
    for level in range(3, 8):
        expected = batch_norm_inference(pyramid[level], *layer_weights(model, f"norm_{level}"))
        np.testing.assert_allclose(outputs[str(level)], expected, rtol=1e-4, atol=1e-4)


def test_fpn_concat_fusion_grows_the_top_down_channels():
    model = FPN(input_specs=SPECS, min_level=2, max_level=5, num_filters=4, fusion_type="concat")
    outputs = model(_features(SPECS), training=False)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "2": (2, 32, 32, 4),
        "3": (2, 16, 16, 4),
        "4": (2, 8, 8, 4),
        "5": (2, 4, 4, 4),
    }
    # Level 5's lateral has 4 channels; each level below concatenates one more lateral.
    in_channels = {lvl: model.get_layer(f"post_hoc_{lvl}").kernel.shape[2] for lvl in range(2, 6)}
    assert in_channels == {5: 4, 4: 8, 3: 12, 2: 16}


def test_fpn_separable_convolutions_and_keras_upsampling():
    model = FPN(
        input_specs=SPECS,
        min_level=3,
        max_level=6,
        num_filters=8,
        use_separable_conv=True,
        use_keras_layer=True,
    )
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.SeparableConv2D)]
    assert len(convs) == 3 + 3 + 1  # Laterals, post-hoc and one coarser level.
    assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in model.layers)
    assert not any(isinstance(layer, NearestUpsampling) for layer in model.layers)
    assert tuple(model(_features(SPECS))["6"].shape) == (2, 2, 2, 8)


def test_fpn_parameter_count_by_hand():
    # ResNet-50's levels 3-5 (512, 1024, 2048 channels) to levels 3-7 with 256 filters:
    # 1x1 laterals and 3x3 post-hoc convolutions with biases, two strided 3x3 convolutions
    # and a batch normalization (gamma, beta) per output level.
    specs = {
        "2": (None, None, None, 256),
        "3": (None, None, None, 512),
        "4": (None, None, None, 1024),
        "5": (None, None, None, 2048),
    }
    with shapes_only():
        model = FPN(input_specs=specs)
        count = trainable_params(model)
    laterals = (512 + 1024 + 2048) * 256 + 3 * 256
    post_hoc = 3 * (9 * 256 * 256 + 256)
    coarser = 2 * (9 * 256 * 256 + 256)
    norms = 5 * 2 * 256
    assert count == laterals + post_hoc + coarser + norms == 3_871_232


def test_resnet50_fpn_retinanet_matches_the_published_size():
    # Model Garden's README (official/vision/MODEL_GARDEN.md): RetinaNet R50-FPN at 640x640
    # has 34.0M parameters (91 COCO classes, 9 anchors, a 4-conv 256-filter head, levels 3-7).
    with shapes_only():
        backbone = build_backbone(
            keras.layers.InputSpec(shape=[None, 640, 640, 3]),
            Backbone(type="resnet", resnet=ResNet(model_id=50)),
        )
        decoder = FPN(input_specs=backbone.output_specs, min_level=3, max_level=7)
        count = trainable_params(backbone) + trainable_params(decoder)
    count += retinanet_head_params(256, 4, num_classes=91, num_anchors=9, num_levels=5)
    assert count == pytest.approx(34.0e6, rel=0.01)


@dataclasses.dataclass
class DetectionModel(Config):
    """A model config shaped like Model Garden's RetinaNet one (the parts decoders read)."""

    backbone: Backbone = dataclasses.field(default_factory=Backbone)
    decoder: Decoder = dataclasses.field(default_factory=Decoder)
    norm_activation: NormActivation = dataclasses.field(default_factory=NormActivation)
    min_level: int = 3
    max_level: int = 7


@pytest.mark.parametrize(
    ("backbone", "expected_levels"),
    [
        # ResNet: levels 2 to 5 at strides 4 to 32 (basic blocks: 64 to 512 channels / 8).
        (
            Backbone(type="resnet", resnet=ResNet(model_id=18, depth_multiplier=0.125)),
            {"2": (16, 16, 8), "3": (8, 8, 16), "4": (4, 4, 32), "5": (2, 2, 64)},
        ),
        # MobileNetV2 (alpha 0.25): levels 2 to 5 with 24, 32, 96 and 320 channels scaled
        # (rounded to multiples of 8), plus the classifier's "pre_logits".
        (
            Backbone(type="mobilenet", mobilenet=MobileNet(filter_size_scale=0.25)),
            {"2": (16, 16, 8), "3": (8, 8, 8), "4": (4, 4, 24), "5": (2, 2, 80)},
        ),
    ],
    ids=["resnet18", "mobilenetv2"],
)
def test_fpn_on_classification_backbones(backbone, expected_levels):
    config = DetectionModel(
        backbone=backbone, decoder=Decoder(type="fpn", fpn=FPNConfig(num_filters=8))
    )
    images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    model = build_backbone(keras.layers.InputSpec(shape=[None, 64, 64, 3]), config.backbone)
    features = model(images, training=False)
    levels = {k: tuple(v.shape[1:]) for k, v in features.items() if k.isdigit()}
    assert levels == expected_levels
    decoder = build_decoder(model.output_specs, config)
    assert isinstance(decoder, FPN)
    assert (decoder.min_level, decoder.max_level) == (3, 7)  # From the model config.
    outputs = decoder(features, training=False)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "3": (2, 8, 8, 8),
        "4": (2, 4, 4, 8),
        "5": (2, 2, 2, 8),
        "6": (2, 1, 1, 8),
        "7": (2, 1, 1, 8),
    }
    assert decoder.output_specs["3"] == (None, 8, 8, 8)


def test_build_decoder_without_model_levels_uses_the_backbones():
    # A bare `Decoder` (no model config around it) passes min_level = max_level = None.
    decoder = build_decoder(SPECS, Decoder(type="fpn", fpn=FPNConfig(num_filters=4)))
    assert sorted(decoder.output_specs) == ["2", "3", "4", "5"]
    identity = build_decoder(SPECS, DetectionModel(decoder=Decoder(type="identity")))
    assert isinstance(identity, Identity)
    assert identity.output_specs == SPECS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_level": 1}, "missing \\[1\\]"),
        ({"fusion_type": "max"}, "fusion_type"),
        ({"min_level": 5, "max_level": 4}, "above max_level"),
        ({"num_filters": 0}, "num_filters"),
        ({"input_specs": {"3": (None, 16, 16, 4), "4": (None, 7, 7, 4)}}, "exactly half"),
        ({"input_specs": {"3": (None, 16, 16, 4), "5": (None, 4, 4, 4)}}, "missing \\[4\\]"),
        ({"input_specs": {"pre_logits": (None, 1, 1, 4)}}, "no levels"),
        ({"input_specs": [(None, 4, 4, 4)]}, "output_specs"),
    ],
)
def test_fpn_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FPN(**{"input_specs": SPECS, "min_level": 3, "max_level": 7, **kwargs})
