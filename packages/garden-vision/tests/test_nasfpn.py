"""NAS-FPN decoder: shared checks, a NumPy reference of the searched cell, published size."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_fpn import (
    batch_norm_inference,
    conv2d_same,
    layer_weights,
    randomize_weights,
    retinanet_head_params,
    shapes_only,
    trainable_params,
    upsample_nearest,
)

from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone, ResNet
from garden_vision.configs.decoders import NASFPN as NASFPNConfig
from garden_vision.configs.decoders import Decoder
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.decoders.factory import build_decoder
from garden_vision.modeling.decoders.nasfpn import NASFPN
from garden_vision.testing import run_backbone_test

# The searched cell of Ghiasi et al. (2019), Figure 7, in Model Garden's notation:
# (level, combine, (input0, input1), is_output); inputs index the cell's five input
# levels 3..7 (0..4), then the blocks in order (5, 6, ...).
PAPER_CELL = [
    (4, "attention", (1, 3), False),
    (4, "sum", (1, 5), False),
    (3, "sum", (0, 6), True),
    (4, "sum", (6, 7), True),
    (5, "attention", (7, 8), True),
    (7, "attention", (6, 9), True),
    (6, "attention", (9, 10), True),
]

SPECS = {"3": (None, 16, 16, 6), "4": (None, 8, 8, 10), "5": (None, 4, 4, 4)}


def _features(specs, seed=0):
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=(2, *shape[1:])).astype("float32") for key, shape in specs.items()}


def _max_pool(x, stride):
    batch, height, width, channels = x.shape
    out_h, out_w = -(-height // stride), -(-width // stride)
    padded = np.full((batch, out_h * stride, out_w * stride, channels), -np.inf)
    padded[:, :height, :width] = x
    return padded.reshape(batch, out_h, stride, out_w, stride, channels).max(axis=(2, 4))


def _reference(model, features, num_repeats, num_filters):
    """NAS-FPN's forward pass in NumPy, from the paper's cell and the model's weights."""

    def resample(x, source, target):
        if source < target:
            return _max_pool(x, 2 ** (target - source))
        if source > target:
            return upsample_nearest(x, 2 ** (source - target))
        return x

    feats = []
    for level in range(3, 8):
        if str(level) in features:
            x = np.asarray(features[str(level)], np.float64)
            if x.shape[-1] != num_filters:
                kernel, bias = layer_weights(model, f"input_{level}_conv")
                x = conv2d_same(x, kernel, bias)
                x = batch_norm_inference(x, *layer_weights(model, f"input_{level}_norm"))
        else:
            x = resample(feats[-1], level - 1, level)
        feats.append(x)
    for repeat in range(num_repeats):
        levels = list(range(3, 8))
        reads = [0] * len(feats)
        for index, (level, combine, (a, b), is_output) in enumerate(PAPER_CELL):
            node_a = resample(feats[a], levels[a], level)
            node_b = resample(feats[b], levels[b], level)
            reads[a] += 1
            reads[b] += 1
            if combine == "sum":
                x = node_a + node_b
            else:
                coarse, fine = (node_a, node_b) if levels[a] >= levels[b] else (node_b, node_a)
                x = coarse + fine / (1 + np.exp(-coarse.max(axis=(1, 2), keepdims=True)))
            if is_output:
                for j, (feat, feat_level) in enumerate(zip(feats, levels, strict=True)):
                    if reads[j] == 0 and feat_level == level:
                        reads[j] += 1
                        x = x + feat
            prefix = f"cell_{repeat}_block_{index}"
            kernel, bias = layer_weights(model, f"{prefix}_conv")
            x = conv2d_same(np.maximum(x, 0.0), kernel, bias)
            x = batch_norm_inference(x, *layer_weights(model, f"{prefix}_norm"))
            feats.append(x)
            levels.append(level)
            reads.append(0)
        by_level = dict(zip(levels[-5:], feats[-5:], strict=True))
        feats = [by_level[level] for level in range(3, 8)]
    return {str(level): feats[level - 3] for level in range(3, 8)}


def test_nasfpn_shared_checks(tmp_path):
    run_backbone_test(
        NASFPN,
        init_kwargs={"input_specs": SPECS, "num_filters": 4, "num_repeats": 2},
        input_data=_features(SPECS),
        expected_output_shapes={
            "3": (2, 16, 16, 4),
            "4": (2, 8, 8, 4),
            "5": (2, 4, 4, 4),
            "6": (2, 2, 2, 4),
            "7": (2, 1, 1, 4),
        },
        tmp_path=tmp_path,
    )


def test_nasfpn_matches_a_numpy_reference_of_the_paper_cell():
    # Level 5 already has num_filters channels (no projection); 6 and 7 are pooled.
    model = NASFPN(input_specs=SPECS, num_filters=4, num_repeats=2)
    randomize_weights(model, seed=3)
    features = _features(SPECS, seed=4)
    outputs = model(features, training=False)
    expected = _reference(model, features, num_repeats=2, num_filters=4)
    for level in expected:
        np.testing.assert_allclose(
            np.asarray(outputs[level]), expected[level], rtol=1e-4, atol=1e-4, err_msg=level
        )


def test_nasfpn_layers_and_separable_convolutions():
    model = NASFPN(input_specs=SPECS, num_filters=8, num_repeats=3, use_separable_conv=True)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.SeparableConv2D)]
    # One per block of each cell, plus the projections of levels 3, 4 and 5.
    assert len(convs) == 3 * len(PAPER_CELL) + 3
    assert not any(type(layer) is keras.layers.Conv2D for layer in model.layers)


def test_resnet50_nasfpn_retinanet_matches_the_published_size():
    # The TPU detection model zoo (tensorflow/tpu, models/official/detection/MODEL_ZOO.md):
    # RetinaNet R50-NAS-FPN at 640x640 has 60.3M parameters. It is the paper's 7@256
    # configuration (seven stacked cells of 256 channels), with the usual RetinaNet head
    # (91 classes, 9 anchors, 4 convolutions of 256 filters, levels 3-7).
    with shapes_only():
        backbone = build_backbone(
            keras.layers.InputSpec(shape=[None, 640, 640, 3]),
            Backbone(type="resnet", resnet=ResNet(model_id=50)),
        )
        decoder = NASFPN(input_specs=backbone.output_specs, num_repeats=7)
        count = trainable_params(backbone) + trainable_params(decoder)
    count += retinanet_head_params(256, 4, num_classes=91, num_anchors=9, num_levels=5)
    assert count == pytest.approx(60.3e6, rel=0.01)


def test_nasfpn_parameter_count_by_hand():
    # Projections of ResNet-50's levels 3-5 (1x1 with bias + BN) and, per cell, seven 3x3
    # convolutions with bias, each followed by BN (gamma, beta).
    specs = {"3": (None, None, None, 512), "4": (None, None, None, 1024)}
    specs["5"] = (None, None, None, 2048)
    with shapes_only():
        count = trainable_params(NASFPN(input_specs=specs, num_repeats=5))
    projections = (512 + 1024 + 2048) * 256 + 3 * 256 + 3 * 2 * 256
    cells = 5 * 7 * (9 * 256 * 256 + 256 + 2 * 256)
    assert count == projections + cells


def test_build_decoder_builds_nasfpn_from_its_config():
    decoder = build_decoder(
        SPECS, Decoder(type="nasfpn", nasfpn=NASFPNConfig(num_filters=4, num_repeats=1))
    )
    assert isinstance(decoder, NASFPN)
    assert (decoder.min_level, decoder.max_level, decoder.num_repeats) == (3, 7, 1)
    assert decoder.output_specs["7"] == (None, 1, 1, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_level": 2}, "not min_level 2"),
        ({"num_repeats": 0}, "num_repeats"),
        ({"max_level": 6, "block_specs": [(7, "sum", (0, 1), True)]}, "outside min_level"),
        ({"max_level": 6}, "input_offsets \\(1, 5\\)"),  # The paper's cell needs 5 levels.
        ({"block_specs": [(3, "max", (0, 1), True)]}, "combine_fn"),
        ({"block_specs": [(3, "sum", (0, 5), True)]}, "input_offsets"),
        ({"block_specs": PAPER_CELL[:-1]}, "cover"),
    ],
)
def test_nasfpn_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        NASFPN(**{"input_specs": SPECS, **kwargs})
