"""EfficientNet backbones: the shared backbone checks, published sizes, scaling, configs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from garden_core import plugins
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

# (width, depth, resolution, dropout) of each model: the reference implementation's
# `efficientnet_params` (tensorflow/tpu models/official/efficientnet/efficientnet_builder.py),
# the coefficients of Tan & Le 2019, "EfficientNet", Sec. 3.3 and Table 2; width and depth
# are also Model Garden's `SCALING_MAP` (official/vision/modeling/backbones/efficientnet.py).
PUBLISHED_SCALING = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# Channels of the outputs at levels 2, 3, 4, 5 and of the 1x1 head ("pre_logits") and the
# number of MBConv blocks, as the reference implementation builds them (its
# `round_filters`/`round_repeats` applied to B0's 24, 40, 112, 320, 1280 channels and
# 1, 2, 2, 3, 3, 4, 1 repeats; e.g. Keras Applications' EfficientNetB7 has 55 blocks and a
# 2560-channel top).
PUBLISHED_WIDTHS_AND_BLOCKS = {
    "b0": ((24, 40, 112, 320, 1280), 16),
    "b1": ((24, 40, 112, 320, 1280), 23),
    "b2": ((24, 48, 120, 352, 1408), 23),
    "b3": ((32, 48, 136, 384, 1536), 26),
    "b4": ((32, 56, 160, 448, 1792), 32),
    "b5": ((40, 64, 176, 512, 2048), 39),
    "b6": ((40, 72, 200, 576, 2304), 45),
    "b7": ((48, 80, 224, 640, 2560), 55),
}
# Sizes of the ImageNet classifiers (backbone + pooling + Dense(1000)): the trainable
# parameters of Keras Applications' EfficientNetB0-B7; the paper's Table 2 rounds them
# (5.3M, 7.8M, 9.2M, 12M, 19M, 30M, 43M, 66M).
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
    resolution = PUBLISHED_SCALING[model_id][2]
    widths, num_blocks = PUBLISHED_WIDTHS_AND_BLOCKS[model_id]
    backbone = EfficientNet(model_id=model_id, input_specs=_spec(resolution))
    # Levels 2-5 have strides 4-32 ("same" padding rounds the sides up).
    sides = [-(-resolution // 2**level) for level in (2, 3, 4, 5, 5)]
    expected = {
        key: (None, side, side, width)
        for key, side, width in zip(("2", "3", "4", "5", "pre_logits"), sides, widths, strict=True)
    }
    assert backbone.output_specs == expected
    assert len(_blocks(backbone)) == num_blocks
    # The ClassificationModel at 1000 classes: backbone, pooling and Dense(1000).
    count = classifier_parameter_count(backbone)
    assert count == pytest.approx(PUBLISHED_PARAMS[model_id], rel=0.005)
    if model_id == "b0":
        assert expected["5"] == (None, 7, 7, 320)
        blocks = _blocks(backbone)
        assert all(block.squeeze_excitation is not None for block in blocks)
        # The published SE width is a quarter of each block's input width.
        first = blocks[1].squeeze_excitation  # 16 -> 24 channels, expanded to 96.
        assert (first.reduce.filters, first.expand.filters) == (4, 96)


def test_scaling_map_is_the_published_one():
    assert {
        model_id: (
            values["width_scale"],
            values["depth_scale"],
            values["resolution"],
            values["dropout_rate"],
        )
        for model_id, values in SCALING_MAP.items()
    } == PUBLISHED_SCALING


def test_scaling_rules():
    # The reference implementation's rounding: multiples of 8, never more than 10 % below
    # the scaled width (stem: 32 channels); repeats rounded up.
    assert [round_filters(32, PUBLISHED_SCALING[m][0]) for m in sorted(PUBLISHED_SCALING)] == [
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
    for supported in PUBLISHED_SCALING:
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
    backbone = build_efficientnet(_spec(None), norm, l2, **plugins.fields_of(config))
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
