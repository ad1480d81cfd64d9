"""EfficientNet backbones: the shared backbone checks, published sizes, scaling, configs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from garden_core.config import ConfigError
from garden_vision.configs import backbones as backbone_configs
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.efficientnet import (
    SCALING_MAP,
    EfficientNet,
    build_efficientnet,
    round_filters,
    round_repeats,
)
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.layers import mobile_blocks
from garden_vision.testing import classifier_parameter_count, run_backbone_test

# Published sizes of the ImageNet classifiers (backbone + pooling + Dense(1000)).
PUBLISHED_PARAMS = {
    "b0": 5_288_548,  # 5.3 M
    "b1": 7_794_184,  # 7.8 M
    "b2": 9_109_994,  # 9.2 M
    "b3": 12_233_232,  # 12 M
    "b4": 19_341_616,  # 19 M
    "b5": 30_389_784,  # 30 M
    "b6": 43_040_704,  # 43 M
    "b7": 66_347_960,  # 66 M
}


def _spec(size: int | None) -> keras.layers.InputSpec:
    return keras.layers.InputSpec(shape=[None, size, size, 3])


def _images(size: int = 64) -> np.ndarray:
    return np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)


def _blocks(model: keras.Model) -> list[mobile_blocks.InvertedBottleneckBlock]:
    return [
        layer for layer in model.layers if isinstance(layer, mobile_blocks.InvertedBottleneckBlock)
    ]


def test_narrow_efficientnet(tmp_path):
    # B0's groups at a quarter of the width and half the depth: 24, 40, 112, 320 and 1280
    # channels become 8, 16, 32, 80 and 320 (multiples of 8, never 10 % below the target).
    run_backbone_test(
        EfficientNet,
        init_kwargs={
            "model_id": "custom",
            "width_scale": 0.25,
            "depth_scale": 0.5,
            "input_specs": _spec(64),
            "stochastic_depth_drop_rate": 0.2,
        },
        input_data=_images(),
        expected_output_shapes={
            "2": (2, 16, 16, 8),
            "3": (2, 8, 8, 16),
            "4": (2, 4, 4, 32),
            "5": (2, 2, 2, 80),
            "pre_logits": (2, 2, 2, 320),
        },
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("model_id", sorted(PUBLISHED_PARAMS))
def test_full_size_levels_and_parameter_count(model_id):
    resolution = int(SCALING_MAP[model_id]["resolution"])
    width_scale = SCALING_MAP[model_id]["width_scale"]
    backbone = EfficientNet(model_id=model_id, input_specs=_spec(resolution))
    # Levels 2-5 have strides 4-32 ("same" padding rounds the sides up).
    expected = {
        level: (None, -(-resolution // 2 ** int(level)), -(-resolution // 2 ** int(level)), width)
        for level, width in zip("2345", (24, 40, 112, 320), strict=True)
    }
    expected = {
        key: shape[:3] + (round_filters(shape[3], width_scale),) for key, shape in expected.items()
    }
    expected["pre_logits"] = expected["5"][:3] + (round_filters(1280, width_scale),)
    assert backbone.output_specs == expected
    # The ClassificationModel at 1000 classes: backbone, pooling and Dense(1000).
    count = classifier_parameter_count(backbone)
    assert count == pytest.approx(PUBLISHED_PARAMS[model_id], rel=0.005)
    if model_id == "b0":
        assert expected["5"] == (None, 7, 7, 320)
        blocks = _blocks(backbone)
        assert len(blocks) == 16
        assert all(block.squeeze_excitation is not None for block in blocks)
        # The published SE width is a quarter of each block's input width.
        first = blocks[1].squeeze_excitation  # 16 -> 24 channels, expanded to 96.
        assert (first.reduce.filters, first.expand.filters) == (4, 96)


def test_scaling_rules():
    assert [round_filters(32, SCALING_MAP[m]["width_scale"]) for m in SCALING_MAP] == [
        32,
        32,
        32,
        40,
        48,
        48,
        56,
        64,
    ]
    assert round_filters(1280, 1.1) == 1408
    assert round_repeats(3, 1.4) == 5  # Rounded up.
    assert round_repeats(1, 3.1) == 4
    assert [SCALING_MAP[m]["resolution"] for m in SCALING_MAP] == [
        224,
        240,
        260,
        300,
        380,
        456,
        528,
        600,
    ]


def test_stochastic_depth_grows_with_block_index():
    backbone = EfficientNet(
        model_id="custom",
        width_scale=0.25,
        depth_scale=1.0,
        input_specs=_spec(32),
        stochastic_depth_drop_rate=0.2,
    )
    blocks = _blocks(backbone)
    rates = [block.stochastic_depth_drop_rate for block in blocks]
    assert rates == pytest.approx([0.2 * (i + 1) / len(blocks) for i in range(len(blocks))])
    # Only the blocks that keep their shape have a residual branch to drop.
    for block in blocks:
        assert (block.stochastic_depth is not None) == block.has_residual


def test_se_ratio_zero_builds_blocks_without_se():
    kwargs = {"model_id": "custom", "width_scale": 0.25, "depth_scale": 0.25}
    without = EfficientNet(se_ratio=0.0, input_specs=_spec(32), **kwargs)
    assert all(block.squeeze_excitation is None for block in _blocks(without))
    with_se = EfficientNet(input_specs=_spec(32), **kwargs)
    assert with_se.count_params() > without.count_params()


@pytest.mark.parametrize("model_id", ["b8", "efficientnet-b0", "l2"])
def test_unsupported_model_id_raises_config_error(model_id):
    with pytest.raises(ConfigError, match="efficientnet.model_id") as error:
        EfficientNet(model_id=model_id)
    for supported in SCALING_MAP:
        assert supported in str(error.value)


def test_factory_rejects_an_unsupported_model_id():
    config = backbone_configs.Backbone(
        type="efficientnet", efficientnet=backbone_configs.EfficientNet(model_id="b9")
    )
    with pytest.raises(ConfigError, match="b7"):
        build_backbone(_spec(32), config)


def test_builder_honours_norm_activation_and_l2_regularizer():
    config = backbone_configs.EfficientNet(model_id="b0", stochastic_depth_drop_rate=0.1)
    norm = NormActivation(
        activation="hard_swish", use_sync_bn=True, norm_momentum=0.9, norm_epsilon=1e-4
    )
    l2 = keras.regularizers.L2(1e-4)
    backbone = build_efficientnet(_spec(None), config, norm, l2_regularizer=l2)
    assert isinstance(backbone, EfficientNet)
    assert all(block.se_ratio == 0.25 for block in _blocks(backbone))  # 0 means published.
    layers = list(backbone._flatten_layers(include_self=False, recursive=True))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(n.momentum == 0.9 and n.epsilon == 1e-4 and n.synchronized for n in norms)
    convs = [
        layer
        for layer in layers
        if isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
    ]
    assert all(isinstance(c.kernel_regularizer, keras.regularizers.L2) for c in convs)
    blocks = _blocks(backbone)
    assert all(block.activation == "hard_swish" for block in blocks)
    expected = keras.activations.get("hard_silu")
    assert blocks[-1].depthwise_activation_layer.activation is expected
    assert blocks[-1].stochastic_depth_drop_rate == pytest.approx(0.1)

    # Through the registry: the config's se_ratio and activation reach the blocks.
    built = build_backbone(
        _spec(None),
        backbone_configs.Backbone(
            type="efficientnet",
            efficientnet=backbone_configs.EfficientNet(model_id="b0", se_ratio=0.5),
        ),
        NormActivation(activation="swish"),
    )
    assert all(block.se_ratio == 0.5 for block in _blocks(built))
    assert _blocks(built)[0].activation == "swish"
