"""SpineNet-Mobile backbone: shared checks, wiring, level capping and the published size."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_fpn import retinanet_head_params, shapes_only, trainable_params

from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.backbones import SpineNetMobile as SpineNetMobileConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.backbones.spinenet_mobile import SpineNetMobile
from garden_vision.modeling.layers.mobile_blocks import InvertedBottleneckBlock
from garden_vision.modeling.layers.resampling import NearestUpsampling
from garden_vision.testing import run_backbone_test

TINY = {"filter_size_scale": 0.5, "endpoints_num_filters": 8, "expand_ratio": 2}


def _spec(size=128):
    return keras.layers.InputSpec(shape=[None, size, size, 3])


def _images(size=128, batch=2):
    return np.random.default_rng(0).uniform(size=(batch, size, size, 3)).astype("float32")


def _blocks(model):
    return [layer for layer in model.layers if isinstance(layer, InvertedBottleneckBlock)]


def _sums(model):
    return {
        layer.name: len(layer.input)
        for layer in model.layers
        if isinstance(layer, keras.layers.Add) and layer.name.endswith("_sum")
    }


# A small scale-permuted network with every kind of connection the searched one has: down
# by strided depthwise convolutions (0 -> 2), up (3 -> 4), and an output block (7) that
# gathers an unread block of its level (5).
SMALL_SPECS = [
    (3, "mbconv", (0, 1), False),
    (5, "mbconv", (1, 2), False),
    (4, "mbconv", (2, 3), True),
    (5, "mbconv", (1, 2), False),
    (3, "mbconv", (3, 4), True),
    (5, "mbconv", (4, 6), True),
]
SMALL = {"block_specs": SMALL_SPECS, "min_level": 3, "max_level": 5, **TINY}


def test_spinenet_mobile_shared_checks(tmp_path):
    model = run_backbone_test(
        SpineNetMobile,
        init_kwargs={
            "input_specs": _spec(32),
            "activation": "hard_swish",
            "init_stochastic_depth_rate": 0.2,
            **SMALL,
        },
        input_data=_images(32),
        expected_output_shapes={"3": (2, 4, 4, 8), "4": (2, 2, 2, 8), "5": (2, 1, 1, 8)},
        tmp_path=tmp_path,
    )
    assert {name: n for name, n in _sums(model).items() if n != 2} == {
        "scale_permuted_block_6_sum": 3
    }
    # Level 1 -> 3 takes two strided depthwise convolutions, level 2 -> 5 three.
    downs = {layer.name for layer in model.layers if "_down" in layer.name and "conv" in layer.name}
    assert {name for name in downs if name.startswith("scale_permuted_block_1_")} == {
        "scale_permuted_block_1_input0_down0_conv",
        "scale_permuted_block_1_input0_down1_conv",
        "scale_permuted_block_1_input1_down0_conv",
    }
    assert "scale_permuted_block_2_input0_down2_conv" in downs


def test_spinenet_mobile_wiring_follows_the_searched_architecture():
    with shapes_only():
        model = SpineNetMobile(input_specs=_spec(None), **TINY)
        # Worked out by hand from the block list: block 14 (the level-5 output) gathers
        # block 11, an unread level-5 block, so it sums three inputs.
        sums = _sums(model)
        assert len(sums) == 16
        assert {name: n for name, n in sums.items() if n != 2} == {"scale_permuted_block_14_sum": 3}
        blocks = _blocks(model)
        assert len(blocks) == 2 + 16
        # MBConv widths: 16 and 24 in the stem, 40 / 80 / 112 from level 3 (times 0.5);
        # squeeze-and-excitation gated by hard sigmoid; the second stem block strided.
        widths = {block.name: block.out_filters for block in blocks}
        assert widths["stem_block_1_0"] == 8
        assert widths["stem_block_2_0"] == 12
        assert widths["scale_permuted_block_4_0"] == 20  # Level 3.
        assert widths["scale_permuted_block_3_0"] == 40  # Level 4.
        assert widths["scale_permuted_block_6_0"] == 56  # Level 6.
        assert all(block.squeeze_excitation.gating_activation == "hard_sigmoid" for block in blocks)
        assert model.get_layer("stem_block_2_0").strides == 2
        # Block 15 (level 7) reads block 6 (level 4): three halvings.
        assert model.get_layer("scale_permuted_block_15_input0_down2_conv")


def test_spinenet_mobile_caps_block_levels_at_max_level():
    with shapes_only():
        model = SpineNetMobile(input_specs=_spec(64), max_level=6, **TINY)
        # The level-7 blocks (9 and 15) are built at level 6 with level-6 widths; block 16
        # (the level-6 output) then also gathers block 15, now an unread level-6 block, and
        # is the level-6 output, as in Model Garden.
        assert model.get_layer("scale_permuted_block_9_0").out_filters == 56
        assert model.get_layer("scale_permuted_block_15_0").out_filters == 56
        sums = _sums(model)
        assert {name: n for name, n in sums.items() if n != 2} == {
            "scale_permuted_block_14_sum": 3,
            "scale_permuted_block_16_sum": 3,
        }
        assert model.output_specs == {
            "3": (None, 8, 8, 8),
            "4": (None, 4, 4, 8),
            "5": (None, 2, 2, 8),
            "6": (None, 1, 1, 8),
        }
        # Block 15 reads block 6 (level 4): two halvings to level 6 now.
        names = {layer.name for layer in model.layers}
        assert "scale_permuted_block_15_input0_down1_conv" in names
        assert "scale_permuted_block_15_input0_down2_conv" not in names


def test_keras_upsampling_gives_the_same_network():
    kwargs = {"input_specs": _spec(32), **SMALL}
    ours = SpineNetMobile(**kwargs)
    keras_only = SpineNetMobile(use_keras_upsampling_2d=True, **kwargs)
    assert any(isinstance(layer, NearestUpsampling) for layer in ours.layers)
    assert not any(isinstance(layer, NearestUpsampling) for layer in keras_only.layers)
    assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in keras_only.layers)
    keras_only.set_weights(ours.get_weights())
    images = _images(32, 1)
    expected, actual = ours(images, training=False), keras_only(images, training=False)
    for level in expected:
        np.testing.assert_allclose(np.asarray(actual[level]), np.asarray(expected[level]))


def test_spinenet_mobile_49_retinanet_matches_the_published_size():
    # Model Garden's README (official/vision/MODEL_GARDEN.md, "Mobile-size RetinaNet"):
    # Mobile SpineNet-49 at 384x384 has 2.32M parameters, with the head of
    # coco_spinenet49_mobile_tpu.yaml: 4 separable convolutions of 48 filters (91
    # classes, 9 anchors, levels 3-7). The TPU model zoo gives 2.34M.
    config = Backbone(type="spinenet_mobile", spinenet_mobile=SpineNetMobileConfig())
    with shapes_only():
        backbone = build_backbone(_spec(384), config, NormActivation(activation="hard_swish"))
        count = trainable_params(backbone)
    assert isinstance(backbone, SpineNetMobile)
    assert backbone.endpoints_num_filters == 48
    assert backbone.get_layer("stem_conv").filters == 8
    count += retinanet_head_params(
        48, 4, num_classes=91, num_anchors=9, num_levels=5, separable=True
    )
    assert 2.31e6 <= count <= 2.35e6


@pytest.mark.parametrize(
    ("model_id", "endpoints", "stem_filters"),
    [("49S", 40, 5), ("49XS", 24, 4)],
)
def test_build_spinenet_mobile_through_the_registry(model_id, endpoints, stem_filters):
    config = Backbone(
        type="spinenet_mobile",
        spinenet_mobile=SpineNetMobileConfig(model_id=model_id, se_ratio=0.25, expand_ratio=4),
    )
    with shapes_only():
        model = build_backbone(_spec(None), config, NormActivation(activation="swish"))
    assert isinstance(model, SpineNetMobile)
    assert model.endpoints_num_filters == endpoints
    assert model.get_layer("stem_conv").filters == stem_filters  # int(8 * scale).
    assert (model.se_ratio, model.expand_ratio, model.activation) == (0.25, 4, "swish")
    assert model.output_specs["7"] == (None, None, None, endpoints)


def test_spinenet_mobile_rejects_bad_settings():
    with pytest.raises(ConfigError, match="model_id"):
        build_backbone(
            _spec(None),
            Backbone(type="spinenet_mobile", spinenet_mobile=SpineNetMobileConfig(model_id="96")),
        )
    with pytest.raises(ConfigError, match="multiple of 128"):
        SpineNetMobile(input_specs=_spec(192))
    with pytest.raises(ConfigError, match="block_fn"):
        SpineNetMobile(block_specs=[(3, "bottleneck", (0, 1), True)])
    with pytest.raises(ConfigError, match="expand_ratio"):
        SpineNetMobile(expand_ratio=0)
