"""SpineNet backbone: shared checks, its scale-permuted wiring and the published sizes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_fpn import retinanet_head_params, shapes_only, trainable_params

from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.backbones import SpineNet as SpineNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.backbones.spinenet import SpineNet, build_spinenet
from garden_vision.modeling.layers.nn_layers import StochasticDepth
from garden_vision.modeling.layers.resnet_blocks import BottleneckBlock, ResidualBlock
from garden_vision.testing import run_backbone_test

TINY = {"filter_size_scale": 0.25, "endpoints_num_filters": 8}


def _spec(size=128):
    return keras.layers.InputSpec(shape=[None, size, size, 3])


def _blocks(model):
    return [layer for layer in model.layers if isinstance(layer, BottleneckBlock | ResidualBlock)]


# A small scale-permuted network with every kind of connection the paper's has: down by
# a strided convolution and max pooling (0 -> 3), up (3 -> 4), both block types, and an
# output block (7) that gathers an unread block of its level and width (5).
SMALL_SPECS = [
    (3, "bottleneck", (0, 1), False),
    (5, "bottleneck", (0, 2), False),
    (4, "residual", (2, 3), True),
    (5, "bottleneck", (1, 2), False),
    (3, "bottleneck", (3, 4), True),
    (5, "bottleneck", (4, 6), True),
]


def _sums(model):
    return {
        layer.name: len(layer.input)
        for layer in model.layers
        if isinstance(layer, keras.layers.Add) and layer.name.endswith("_sum")
    }


def test_spinenet_shared_checks(tmp_path):
    kwargs = {"block_specs": SMALL_SPECS, "min_level": 3, "max_level": 5, **TINY}
    model = run_backbone_test(
        SpineNet,
        init_kwargs={"input_specs": _spec(32), "init_stochastic_depth_rate": 0.3, **kwargs},
        input_data=np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32"),
        expected_output_shapes={"3": (2, 4, 4, 8), "4": (2, 2, 2, 8), "5": (2, 1, 1, 8)},
        tmp_path=tmp_path,
    )
    assert _sums(model) == {
        "scale_permuted_block_1_sum": 2,
        "scale_permuted_block_2_sum": 2,
        "scale_permuted_block_3_sum": 2,
        "scale_permuted_block_4_sum": 2,
        "scale_permuted_block_5_sum": 2,
        "scale_permuted_block_6_sum": 3,
    }
    # Going down one level takes a strided convolution, each further level a max pooling:
    # blocks 2 and 4 read a level-2 stem block and a level-3 block at level 5, block 6 a
    # level-3 block.
    pools = {layer.name for layer in model.layers if "_down_pool" in layer.name}
    assert pools == {
        "scale_permuted_block_2_input0_down_pool0",
        "scale_permuted_block_2_input0_down_pool1",
        "scale_permuted_block_2_input1_down_pool0",
        "scale_permuted_block_4_input0_down_pool0",
        "scale_permuted_block_4_input0_down_pool1",
        "scale_permuted_block_4_input1_down_pool0",
        "scale_permuted_block_6_input1_down_pool0",
    }
    # Stochastic depth grows linearly to 0.3 over the 6 permuted blocks; none in the stem.
    rates = {
        block.name: block.stochastic_depth.drop_rate
        for block in _blocks(model)
        if isinstance(block.stochastic_depth, StochasticDepth)
    }
    assert rates == {f"scale_permuted_block_{i}_0": pytest.approx(0.3 * i / 6) for i in range(1, 7)}


def test_spinenet_wiring_follows_the_paper_architecture():
    model = SpineNet(input_specs=_spec(128), min_level=2, max_level=7, **TINY)
    # Worked out by hand from the block list: block 13 (the level-5 output) is the only
    # one with an unread block of its level and width (block 10, a level-5 bottleneck) to
    # gather, so it sums three inputs; every other block sums two.
    sums = _sums(model)
    assert len(sums) == 16
    assert {name: n for name, n in sums.items() if n != 2} == {"scale_permuted_block_13_sum": 3}
    # Block filters: 64, 128, 256 at levels 2, 3, 4 and up (times 0.25); bottlenecks
    # output 4x; every output has 8 channels.
    blocks = {block.name: block for block in _blocks(model)}
    assert len(blocks) == 2 + 16
    assert sum(type(block) is ResidualBlock for block in blocks.values()) == 4
    block_2 = blocks["scale_permuted_block_2_0"]  # Level 4, residual.
    assert (type(block_2), block_2.filters) == (ResidualBlock, 64)
    block_3 = blocks["scale_permuted_block_3_0"]  # Level 3, bottleneck.
    assert (type(block_3), block_3.filters, block_3.out_filters) == (BottleneckBlock, 32, 128)
    outputs = model(np.zeros((1, 128, 128, 3), "float32"), training=False)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        str(level): (1, 128 // 2**level, 128 // 2**level, 8) for level in range(2, 8)
    }


def test_spinenet_block_repeats_and_unused_blocks():
    with shapes_only():
        model = SpineNet(input_specs=_spec(128), block_repeats=2, min_level=4, max_level=6, **TINY)
        # Every block group holds two blocks. Levels 2, 3 and 7 are not outputs, so their
        # output blocks (which nothing else reads) are left out: 13 of 16 remain.
        assert len(_blocks(model)) == 2 * (2 + 13)
        assert model.output_specs == {
            "4": (None, 8, 8, 8),
            "5": (None, 4, 4, 8),
            "6": (None, 2, 2, 8),
        }


# Published sizes (parameters) of models built on SpineNet, from the TPU detection model
# zoo (tensorflow/tpu, models/official/detection/MODEL_ZOO.md; the same figures are in the
# SpineNet paper and, for RetinaNet, in Model Garden's official/vision/MODEL_GARDEN.md):
# - an ImageNet classifier: the backbone, global pooling and a 1000-way dense layer on the
#   `endpoints_num_filters` features ("ImageNet Baselines", 224x224);
# - RetinaNet at levels 3-7 (91 classes, 9 anchors) with its head's (filters, convolutions):
#   (256, 4) for SpineNet-49 to -143 and (512, 7) for SpineNet-190
#   (configs spinenet49/96/143/190_retinanet.yaml, Model Garden's coco_spinenet190_tpu.yaml).
# SpineNet-96 (36.5M, 43.0M) and -143 (60.5M, 66.9M / 67.0M) match as well; they are left
# out to keep the test short, as -190 already covers block repeats and alpha 1.0.
PUBLISHED = {
    "49": (22.1e6, 28.5e6, (256, 4)),
    "190": (127.1e6, 163.6e6, (512, 7)),
}


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_spinenet_sizes_match_the_published_ones(model_id):
    classifier, retinanet, (head_filters, head_convs) = PUBLISHED[model_id]
    with shapes_only():
        backbone = build_spinenet(_spec(None), NormActivation(), model_id=model_id)
        count = trainable_params(backbone)
    features = backbone.endpoints_num_filters
    assert count + features * 1000 + 1000 == pytest.approx(classifier, abs=0.05e6)
    head = retinanet_head_params(
        head_filters, head_convs, num_classes=91, num_anchors=9, num_levels=5
    )
    assert count + head == pytest.approx(retinanet, abs=0.06e6)


# Trainable parameters of Model Garden's own SpineNet backbones (tf-models-official 2.20,
# `official.vision.modeling.backbones.spinenet.SpineNet` with its SCALING_MAP settings,
# levels 3-7). SpineNet-49S has no published backbone-only figure; the TPU model zoo's
# 11.9-12.0 M for its RetinaNet (head of 128 filters) is not what Model Garden's own code
# builds either (9,089,215 + a 128-filter head of 2,176,727 = 11.27 M).
MODEL_GARDEN_COUNTS = {"49S": 9_089_215, "49": 21_831_488}


@pytest.mark.parametrize("model_id", sorted(MODEL_GARDEN_COUNTS))
def test_spinenet_sizes_match_model_garden_builds(model_id):
    with shapes_only():
        backbone = build_spinenet(_spec(None), NormActivation(), model_id=model_id)
        assert trainable_params(backbone) == MODEL_GARDEN_COUNTS[model_id]


def test_build_spinenet_through_the_registry():
    config = Backbone(
        type="spinenet",
        spinenet=SpineNetConfig(model_id="49S", stochastic_depth_drop_rate=0.1, max_level=6),
    )
    norm = NormActivation(activation="swish", norm_momentum=0.9)
    regularizer = keras.regularizers.L2(1e-4)
    with shapes_only():
        model = build_backbone(_spec(None), config, norm, regularizer)
    assert isinstance(model, SpineNet)
    assert (model.endpoints_num_filters, model.filter_size_scale) == (128, 0.65)
    assert (model.min_level, model.max_level, model.init_stochastic_depth_rate) == (3, 6, 0.1)
    assert (model.activation, model.norm_momentum) == ("swish", 0.9)
    assert model.kernel_regularizer is regularizer
    assert sorted(model.output_specs) == ["3", "4", "5", "6"]
    with pytest.raises(ConfigError, match="model_id"):
        build_backbone(
            _spec(None), Backbone(type="spinenet", spinenet=SpineNetConfig(model_id="50"))
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_specs": [None, 96, 128, 3]}, "height 96 must be a multiple of 128"),
        ({"max_level": 8}, "levels \\[8\\]"),
        ({"block_specs": [(3, "residual", (0, 2), True)]}, "input_offsets"),
        ({"block_specs": [(3, "dense", (0, 1), True)]}, "block_fn"),
        ({"block_specs": [(3, "residual", (0, 1))]}, "must be \\(level"),
        ({"resample_alpha": 0}, "resample_alpha"),
        ({"init_stochastic_depth_rate": 1.0}, "init_stochastic_depth_rate"),
    ],
)
def test_spinenet_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SpineNet(**{"input_specs": _spec(None), **kwargs})
