"""`DilatedResNet`, DeepLab's ResNet whose strides past `output_stride` become dilation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_deeplab_layers import conv_same

from garden_core import registry as registry_lib
from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.backbones import DilatedResNet as DilatedResNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.backbones.resnet_deeplab import DilatedResNet, build_dilated_resnet
from garden_vision.testing import run_backbone_test


def specs(size=64):
    return keras.layers.InputSpec(shape=[None, size, size, 3])


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture
def dilated_resnet_registered():
    """`dilated_resnet` in `garden.backbones`, in process until the entry point is installed."""
    backbones = registry_lib.registry("backbones")
    added = "dilated_resnet" not in backbones
    if added:
        backbones.register("dilated_resnet", build_dilated_resnet)
    yield
    if added:
        backbones.unregister("dilated_resnet")


def _dilations(model, level):
    """The dilation rate of the 3x3 convolution of every block of group `level`."""
    rates = []
    index = 0
    while True:
        try:
            block = model.get_layer(f"block_group_l{level}_block{index}")
        except ValueError:
            return rates
        assert block.branch.layers[3].dilation_rate == (block.dilation_rate,) * 2
        rates.append(block.dilation_rate)
        index += 1


OS8 = {"2": (None, 16, 16, 256), "3": (None, 8, 8, 2048)}
OS16 = {"2": (None, 16, 16, 256), "3": (None, 8, 8, 512), "4": (None, 4, 4, 2048)}
OS32 = {
    "2": (None, 16, 16, 256),
    "3": (None, 8, 8, 512),
    "4": (None, 4, 4, 1024),
    "5": (None, 2, 2, 2048),
}


# Endpoints of a 64x64 image are Model Garden's: levels 2 .. log2(output_stride), the last
# holding the output of the final (2048-channel) group. Dilation follows DeepLabV3 (Chen et
# al., 2017, section 3.2): past the output stride every group doubles the rate, and
# multi-grid multiplies the rates of the blocks of the level-5 group(s).
@pytest.mark.parametrize(
    ("output_stride", "multigrid", "last_stage_repeats", "endpoints", "rates"),
    [
        (8, None, 1, OS8, {3: [1] * 4, 4: [2] * 6, 5: [4] * 3}),
        (16, [1, 2, 4], 1, OS16, {2: [1] * 3, 3: [1] * 4, 4: [1] * 6, 5: [2, 4, 8]}),
        (32, [1, 2, 4], 1, OS32, {4: [1] * 6, 5: [1, 1, 1]}),
        (16, [1, 2, 4], 3, OS16, {4: [1] * 6, 5: [2, 4, 8], 6: [4, 8, 16], 7: [8, 16, 32]}),
    ],
)
def test_endpoints_and_strides_past_the_output_stride_become_dilation(
    output_stride, multigrid, last_stage_repeats, endpoints, rates
):
    model = DilatedResNet(
        model_id=50,
        output_stride=output_stride,
        multigrid=multigrid,
        last_stage_repeats=last_stage_repeats,
        input_specs=specs(64),
    )
    assert model.output_specs == endpoints
    for level, expected in rates.items():
        assert _dilations(model, level) == expected, f"level {level}"
    strides = [model.get_layer(f"block_group_l{level}_block0").strides for level in (2, 3, 4, 5)]
    assert strides == {8: [1, 2, 1, 1], 16: [1, 2, 2, 1], 32: [1, 2, 2, 2]}[output_stride]


def test_outputs_at_output_stride_8_and_16_and_unknown_size_in_a_tf_function():
    images = np.random.default_rng(0).uniform(-1, 1, (1, 40, 48, 3)).astype("float32")
    for output_stride, level in ((8, "3"), (16, "4")):
        model = DilatedResNet(model_id=50, output_stride=output_stride)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def run(x, model=model):
            return model(x, training=False)

        outputs = run(images)
        assert sorted(outputs) == sorted(model.output_specs)
        # "Same" padding: every stride-2 layer rounds up (40 -> 20 -> 10 -> 5 -> 3).
        height, width = (math.ceil(side / output_stride) for side in (40, 48))
        assert tuple(outputs[level].shape) == (1, height, width, 2048)
        assert tuple(outputs["2"].shape) == (1, 10, 12, 256)


# Trainable parameters of tf-models-official 2.20's own `DilatedResNet` for the same
# settings (counted with its `backbones.DilatedResNet` built on a 64x64 input).
@pytest.mark.parametrize(
    ("settings", "exact"),
    [
        (
            {"model_id": 101, "output_stride": 16, "multigrid": [1, 2, 4], "stem_type": "v1"},
            42_623_936,
        ),
        (
            {
                "model_id": 50,
                "output_stride": 8,
                "stem_type": "v1",
                "resnetd_shortcut": True,
                "replace_stem_max_pool": True,
                "se_ratio": 0.25,
                "multigrid": [1, 2, 4],
                "last_stage_repeats": 2,
            },
            57_649_152,
        ),
    ],
)
def test_parameter_counts_match_model_garden(settings, exact):
    model = DilatedResNet(input_specs=specs(), **settings)
    assert trainable(model) == exact


def test_stochastic_depth_scales_with_the_group_over_all_groups():
    # Model Garden: group L of `3 + last_stage_repeats` groups drops with rate * L / (4 + r).
    model = DilatedResNet(
        model_id=50,
        output_stride=16,
        init_stochastic_depth_rate=0.2,
        last_stage_repeats=2,
        input_specs=specs(32),
    )
    for level in (2, 3, 4, 5, 6):
        block = model.get_layer(f"block_group_l{level}_block0")
        assert block.stochastic_depth_drop_rate == pytest.approx(0.2 * level / 6)


def test_shared_checks_and_a_dilated_convolution_equals_numpy(tmp_path):
    model = run_backbone_test(
        DilatedResNet,
        init_kwargs={
            "model_id": 50,
            "output_stride": 8,
            "stem_type": "v1",
            "multigrid": [1, 2, 1],
            "kernel_regularizer": keras.regularizers.L2(1e-4),
            "input_specs": keras.layers.InputSpec(shape=[None, 32, 32, 3]),
        },
        input_data=np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32"),
        expected_output_shapes={"2": (2, 8, 8, 256), "3": (2, 4, 4, 2048)},
        tmp_path=tmp_path,
        run_mixed_precision=False,  # The residual blocks' own tests cover it.
    )
    assert _dilations(model, 5) == [4, 8, 4]
    conv = model.get_layer("block_group_l5_block1").branch.layers[3]
    kernel = np.random.default_rng(1).normal(size=conv.kernel.shape).astype("float32")
    conv.kernel.assign(kernel)
    x = np.random.default_rng(2).normal(size=(1, 20, 20, conv.kernel.shape[2])).astype("float32")
    np.testing.assert_allclose(conv(x), conv_same(x, kernel, rate=8), rtol=1e-4, atol=1e-3)


@pytest.mark.usefixtures("dilated_resnet_registered")
def test_the_registered_builder_takes_the_config_fields_and_norm_activation():
    config = Backbone(
        type="dilated_resnet",
        dilated_resnet=DilatedResNetConfig(
            model_id=50, output_stride=8, multigrid=[1, 2, 4], stem_type="v1"
        ),
    )
    norm = NormActivation(activation="swish", norm_momentum=0.9, norm_epsilon=1e-4)
    model = build_backbone(specs(32), config, norm, keras.regularizers.L2(1e-4))
    assert isinstance(model, DilatedResNet)
    assert model.output_specs["3"] == (None, 4, 4, 2048)
    assert (model.multigrid, model.stem_type, model.activation) == ([1, 2, 4], "v1", "swish")
    assert model.get_layer("stem1_norm").momentum == 0.9
    assert model.losses  # Weight decay reaches the kernels.
    # The builder's defaults are the config's.
    default = build_dilated_resnet(specs(32), NormActivation())
    assert (default.model_id, default.output_stride, default.stem_type) == (50, 16, "v0")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model_id": 18}, "model_id"),
        ({"output_stride": 12}, "output_stride"),
        ({"stem_type": "v2"}, "stem_type"),
        ({"multigrid": [1, 2]}, "multigrid"),
        ({"last_stage_repeats": 0}, "last_stage_repeats"),
    ],
)
def test_bad_settings_are_clear_errors(settings, message):
    arguments = {"model_id": 50, "output_stride": 16, "input_specs": specs(32), **settings}
    with pytest.raises(ConfigError, match=message):
        DilatedResNet(**arguments)
