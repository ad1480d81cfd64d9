"""MobileNet V2/V3 backbones: the shared backbone checks, published sizes, dilation, configs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from garden_core import plugins
from garden_core.config import ConfigError
from garden_vision.configs import backbones as backbone_configs
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.backbones.mobilenet import (
    SUPPORTED_MODEL_IDS,
    MobileNet,
    build_mobilenet,
    decode_block_specs,
)
from garden_vision.modeling.layers import mobile_blocks
from garden_vision.testing import classifier_parameter_count, run_backbone_test


def _spec(size: int | None) -> keras.layers.InputSpec:
    return keras.layers.InputSpec(shape=[None, size, size, 3])


def _images(size: int = 64) -> np.ndarray:
    return np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)


def _sublayers(model: keras.Model) -> list[keras.layers.Layer]:
    return list(model._flatten_layers(include_self=False, recursive=True))


def test_narrow_mobilenet_v2(tmp_path):
    # Widths 24, 32, 96, 320 scaled by 0.35 and rounded to multiples of 8 (>= 90 %); the
    # 1280-wide final layer keeps its width (finegrain classification mode).
    run_backbone_test(
        MobileNet,
        init_kwargs={
            "model_id": "MobileNetV2",
            "filter_size_scale": 0.35,
            "input_specs": _spec(64),
            "stochastic_depth_drop_rate": 0.1,
        },
        input_data=_images(),
        expected_output_shapes={
            "2": (2, 16, 16, 8),
            "3": (2, 8, 8, 16),
            "4": (2, 4, 4, 32),
            "5": (2, 2, 2, 112),
            "pre_logits": (2, 2, 2, 1280),
        },
        tmp_path=tmp_path,
    )


def test_mobilenet_v3_small(tmp_path):
    # V3's final layers pool globally, so "pre_logits" is 1x1.
    run_backbone_test(
        MobileNet,
        init_kwargs={"model_id": "MobileNetV3Small", "input_specs": _spec(64)},
        input_data=_images(),
        expected_output_shapes={
            "2": (2, 16, 16, 16),
            "3": (2, 8, 8, 24),
            "4": (2, 4, 4, 48),
            "5": (2, 2, 2, 96),
            "pre_logits": (2, 1, 1, 1024),
        },
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize(
    ("model_id", "published", "widths"),
    [
        # MobileNetV2 1.0: 3.5 M; MobileNetV3-Large: 5.4 M; MobileNetV3-Small: 2.5 M.
        ("MobileNetV2", 3_504_872, {"2": 24, "3": 32, "4": 96, "5": 320, "pre_logits": 1280}),
        (
            "MobileNetV3Large",
            5_483_032,
            {"2": 24, "3": 40, "4": 112, "5": 160, "pre_logits": 1280},
        ),
        ("MobileNetV3Small", 2_542_856, {"2": 16, "3": 24, "4": 48, "5": 96, "pre_logits": 1024}),
    ],
)
def test_full_size_levels_and_parameter_count(model_id, published, widths):
    backbone = MobileNet(model_id=model_id, input_specs=_spec(224))
    # Levels 2-5 have strides 4-32; V2's final layer is 7x7, V3's pools to 1x1.
    pre_logits_side = 7 if model_id == "MobileNetV2" else 1
    expected = {level: (None, 224 // 2 ** int(level), 224 // 2 ** int(level)) for level in "2345"}
    expected["pre_logits"] = (None, pre_logits_side, pre_logits_side)
    specs = backbone.output_specs
    assert {key: shape[:3] for key, shape in specs.items()} == expected
    assert {key: shape[-1] for key, shape in specs.items()} == widths
    # The ClassificationModel at 1000 classes: backbone, pooling and Dense(1000).
    assert classifier_parameter_count(backbone) == pytest.approx(published, rel=0.005)


def test_output_stride_16_dilates_the_last_stage():
    backbone = MobileNet(
        model_id="MobileNetV2", filter_size_scale=0.35, input_specs=_spec(64), output_stride=16
    )
    # Levels past stride 16 fold into level 4, which now holds the last block (320 * 0.35).
    assert backbone.output_specs == {
        "2": (None, 16, 16, 8),
        "3": (None, 8, 8, 16),
        "4": (None, 4, 4, 112),
        "pre_logits": (None, 4, 4, 1280),
    }
    blocks = [
        layer
        for layer in backbone.layers
        if isinstance(layer, mobile_blocks.InvertedBottleneckBlock)
    ]
    # The last four blocks (160, 160, 160, 320 wide) run at stride 16 with dilation 2.
    assert [(b.strides, b.dilation_rate) for b in blocks[-4:]] == [(1, 2)] * 4
    assert all(b.dilation_rate == 1 for b in blocks[:-4])
    outputs = backbone(_images(), training=False)
    assert tuple(outputs["4"].shape) == (2, 4, 4, 112)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(outputs["pre_logits"])))


def test_output_stride_8_and_intermediate_endpoints():
    backbone = MobileNet(
        model_id="MobileNetV3Small",
        filter_size_scale=0.35,
        input_specs=_spec(None),
        output_stride=8,
        output_intermediate_endpoints=True,
    )
    specs = backbone.output_specs
    assert sorted(specs) == ["2", "2/depthwise", "3", "3/depthwise", "pre_logits"]
    outputs = backbone(_images(32), training=False)
    assert tuple(outputs["3"].shape) == (2, 4, 4, 32)  # The last block (96 * 0.35), stride 8.
    assert tuple(outputs["3/depthwise"].shape)[:3] == (2, 4, 4)
    assert sorted(outputs) == sorted(specs)
    assert all(outputs[key].shape[-1] == specs[key][-1] for key in specs)


def test_stochastic_depth_rates():
    def rates(flat: bool) -> list[float]:
        backbone = MobileNet(
            model_id="MobileNetV2",
            filter_size_scale=0.35,
            input_specs=_spec(32),
            stochastic_depth_drop_rate=0.2,
            flat_stochastic_depth_drop_rate=flat,
        )
        return [
            layer.stochastic_depth.drop_rate
            for layer in backbone.layers
            if isinstance(layer, mobile_blocks.InvertedBottleneckBlock)
            and layer.stochastic_depth is not None
        ]

    flat = rates(True)
    assert len(flat) == 10  # The residual blocks of MobileNetV2.
    assert flat == pytest.approx([0.2] * 10)
    scaled = rates(False)
    assert scaled == sorted(scaled)
    assert 0 < scaled[0] < scaled[-1] < 0.2


def test_filter_size_scale_rounds_to_multiples_of_8():
    specs = decode_block_specs("MobileNetV2", filter_size_scale=0.5)
    widths = [spec.filters for spec in specs]
    assert widths[:3] == [16, 8, 16]  # 32, 16, 24 halved; 8 is the minimum.
    assert widths[-2:] == [160, 1280]  # 320 halved; the last layer is kept.
    assert all(width % 8 == 0 for width in widths)
    no_finegrain = decode_block_specs(
        "MobileNetV2", filter_size_scale=0.5, finegrain_classification_mode=False
    )
    assert no_finegrain[-1].filters == 640


@pytest.mark.parametrize("model_id", ["MobileNetV1", "MobileNetV4ConvSmall", "MobileNetV9"])
def test_unsupported_model_id_raises_config_error(model_id):
    with pytest.raises(ConfigError, match="mobilenet.model_id") as error:
        MobileNet(model_id=model_id)
    for supported in SUPPORTED_MODEL_IDS:
        assert supported in str(error.value)
    assert model_id in str(error.value)


def test_factory_rejects_an_unsupported_model_id():
    config = backbone_configs.Backbone(
        type="mobilenet", mobilenet=backbone_configs.MobileNet(model_id="MobileNetMultiAVG")
    )
    with pytest.raises(ConfigError, match="MobileNetV3Large"):
        build_backbone(_spec(32), config)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"filter_size_scale": 0.0}, "filter_size_scale"),
        ({"output_stride": 7}, "output_stride"),
        ({"stochastic_depth_drop_rate": 1.0}, "stochastic_depth_drop_rate"),
    ],
)
def test_invalid_settings_raise_config_error(overrides, match):
    with pytest.raises(ConfigError, match=match):
        MobileNet(input_specs=_spec(32), **overrides)


def test_builder_honours_norm_activation_and_l2_regularizer():
    config = backbone_configs.MobileNet(
        model_id="MobileNetV3Small", filter_size_scale=0.35, output_stride=16
    )
    norm = NormActivation(use_sync_bn=True, norm_momentum=0.9, norm_epsilon=1e-4)
    l2 = keras.regularizers.L2(1e-4)
    backbone = build_mobilenet(_spec(32), norm, l2, **plugins.fields_of(config))
    assert isinstance(backbone, MobileNet)
    assert backbone.get_config()["output_stride"] == 16
    layers = _sublayers(backbone)
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms
    assert all(n.momentum == 0.9 and n.epsilon == 1e-4 and n.synchronized for n in norms)
    convs = [
        layer
        for layer in layers
        if isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
    ]
    assert convs
    assert all(isinstance(c.kernel_regularizer, keras.regularizers.L2) for c in convs)
    backbone(_images(32))
    assert len(backbone.losses) >= len(convs)

    # Through the registry, with the defaults.
    built = build_backbone(_spec(32), backbone_configs.Backbone(type="mobilenet"))
    assert isinstance(built, MobileNet)
    assert built.get_config()["model_id"] == "MobileNetV2"
