"""ResNet v1.5 / ResNet-RS backbone and its residual blocks."""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import pytest

from garden_core import plugins
from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.backbones import ResNet as ResNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.backbones.resnet import RESNET_SPECS, ResNet, build_resnet
from garden_vision.modeling.layers.nn_layers import SqueezeExcitation, StochasticDepth
from garden_vision.modeling.layers.resnet_blocks import BottleneckBlock, ResidualBlock
from garden_vision.testing import classifier_parameter_count, run_backbone_test

# Model Garden's RESNET_SPECS (block repeats per group), written out independently of the
# module's table; 26 is the usual bottleneck ResNet-26 and 300 an earlier Model Garden depth.
EXPECTED_REPEATS = {
    10: ("residual", (1, 1, 1, 1)),
    18: ("residual", (2, 2, 2, 2)),
    26: ("bottleneck", (2, 2, 2, 2)),
    34: ("residual", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
    270: ("bottleneck", (4, 29, 53, 4)),
    300: ("bottleneck", (4, 36, 54, 4)),
    350: ("bottleneck", (4, 36, 72, 4)),
    420: ("bottleneck", (4, 44, 87, 4)),
}


@contextlib.contextmanager
def shapes_only():
    """Builds models with their variables' shapes but without initializing them.

    Building a functional model is shape inference; skipping the (slow) variable
    initialization makes full-size models cheap. No forward pass may run inside.
    """
    with keras.StatelessScope(initialize_variables=False):
        yield
    keras.utils.clear_session()  # Forgets the uninitialized variables.


def _spec(size: int | None = 64) -> keras.layers.InputSpec:
    return keras.layers.InputSpec(shape=[None, size, size, 3])


def _images(size: int = 64) -> np.ndarray:
    return np.random.RandomState(0).rand(2, size, size, 3).astype("float32")


def _blocks(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, ResidualBlock | BottleneckBlock)]


def test_resnet18_basic_blocks(tmp_path):
    model = run_backbone_test(
        ResNet,
        init_kwargs={"model_id": 18, "depth_multiplier": 0.25, "input_specs": _spec()},
        input_data=_images(),
        expected_output_shapes={
            "2": (2, 16, 16, 16),
            "3": (2, 8, 8, 32),
            "4": (2, 4, 4, 64),
            "5": (2, 2, 2, 128),
        },
        tmp_path=tmp_path,
    )
    blocks = _blocks(model)
    assert len(blocks) == 8
    assert all(type(block) is ResidualBlock for block in blocks)


def test_resnet_rs_options(tmp_path):
    kwargs = {
        "model_id": 26,
        "depth_multiplier": 0.25,
        "stem_type": "v1",
        "resnetd_shortcut": True,
        "replace_stem_max_pool": True,
        "se_ratio": 0.25,
        "init_stochastic_depth_rate": 0.2,
        "input_specs": _spec(),
    }
    model = run_backbone_test(
        ResNet,
        init_kwargs=kwargs,
        input_data=_images(),
        expected_output_shapes={
            "2": (2, 16, 16, 64),
            "3": (2, 8, 8, 128),
            "4": (2, 4, 4, 256),
            "5": (2, 2, 2, 512),
        },
        tmp_path=tmp_path,
    )
    # Stem v1 (three 3x3 convolutions: 32, 32, 64 filters, scaled) and a strided 3x3
    # convolution in place of max pooling.
    stem = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides) for c in stem] == [
        (8, (3, 3), (2, 2)),
        (8, (3, 3), (1, 1)),
        (16, (3, 3), (1, 1)),
        (16, (3, 3), (2, 2)),
    ]
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    blocks = _blocks(model)
    assert len(blocks) == 8
    assert all(type(block) is BottleneckBlock for block in blocks)
    for block in blocks:
        level = int(block.name.split("_l")[1][0])
        assert isinstance(block.squeeze_excitation, SqueezeExcitation)
        assert isinstance(block.stochastic_depth, StochasticDepth)
        # Model Garden's schedule: the rate grows linearly with the group's level.
        assert block.stochastic_depth_drop_rate == pytest.approx(0.2 * level / 5)
        if block.use_projection:  # ResNet-D: average pooling, then a stride-1 projection.
            pool, conv, _ = block.shortcut.layers
            assert isinstance(pool, keras.layers.AveragePooling2D)
            assert conv.strides == (1, 1)


def test_output_levels_have_strides_4_to_32():
    with shapes_only():
        for kwargs in ({}, {"stem_type": "v1", "replace_stem_max_pool": True}):
            model = ResNet(50, input_specs=_spec(224), **kwargs)
            assert model.output_specs == {
                "2": (None, 56, 56, 256),
                "3": (None, 28, 28, 512),
                "4": (None, 14, 14, 1024),
                "5": (None, 7, 7, 2048),
            }
        unknown = ResNet(18, input_specs=_spec(None))
        assert unknown.output_specs == {
            "2": (None, None, None, 64),
            "3": (None, None, None, 128),
            "4": (None, None, None, 256),
            "5": (None, None, None, 512),
        }


@pytest.mark.parametrize("model_id", sorted(RESNET_SPECS))
def test_every_model_id_builds_with_its_blocks(model_id):
    block_type, repeats = EXPECTED_REPEATS[model_id]
    block_class = {"residual": ResidualBlock, "bottleneck": BottleneckBlock}[block_type]
    with shapes_only():
        model = ResNet(model_id, input_specs=_spec(None), depth_multiplier=0.25)
        blocks = _blocks(model)
        assert all(type(block) is block_class for block in blocks)
        per_level = [
            sum(block.name.startswith(f"block_group_l{level}_") for block in blocks)
            for level in (2, 3, 4, 5)
        ]
        assert tuple(per_level) == repeats
        expansion = 4 if block_type == "bottleneck" else 1
        assert [model.output_specs[level][-1] for level in "2345"] == [
            16 * expansion,
            32 * expansion,
            64 * expansion,
            128 * expansion,
        ]


@pytest.mark.parametrize(
    ("model_id", "kwargs", "published"),
    [
        (50, {}, 25_557_032),  # ResNet-50, 25.6 M.
        (101, {}, 44_549_160),  # ResNet-101, 44.5 M.
        # The original ResNet-18 and -34 have no projection in their first block.
        (18, {"use_first_projection": False}, 11_689_512),
        (34, {"use_first_projection": False}, 21_797_672),
    ],
)
def test_parameter_count_matches_the_published_one(model_id, kwargs, published):
    with shapes_only():
        count = classifier_parameter_count(ResNet(model_id, input_specs=_spec(224), **kwargs))
    assert abs(count - published) / published < 0.005, (count, published)


def test_unsupported_values_raise_config_errors():
    with pytest.raises(ConfigError, match=r"model_id.*7.*18, 26, 34, 50"):
        ResNet(7)
    with pytest.raises(ConfigError, match=r"stem_type.*'v2'.*v0, v1"):
        ResNet(18, stem_type="v2")
    config = Backbone(type="resnet", resnet=ResNetConfig(model_id=19))
    with pytest.raises(ConfigError, match="model_id"):
        build_backbone(_spec(), config)


def test_builder_honours_norm_activation_and_l2():
    config = Backbone(
        type="resnet",
        resnet=ResNetConfig(model_id=10, depth_multiplier=0.25, stochastic_depth_drop_rate=0.1),
    )
    norm_activation = NormActivation(
        activation="swish", use_sync_bn=True, norm_momentum=0.9, norm_epsilon=1e-5
    )
    model = build_backbone(
        _spec(32), config, norm_activation, l2_regularizer=keras.regularizers.L2(1e-4)
    )
    assert isinstance(model, ResNet)
    assert model.init_stochastic_depth_rate == 0.1
    norms = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms
    assert all(n.momentum == 0.9 and n.epsilon == 1e-5 and n.synchronized for n in norms)
    activations = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Activation)
    ]
    assert activations
    assert all(layer.activation is keras.activations.silu for layer in activations)
    convs = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Conv2D)
    ]
    assert len(model.losses) == len(convs) > 0  # One weight-decay term per kernel.
    assert len(ResNet.from_config(model.get_config()).losses) == len(convs)
    # The same model straight from the builder function.
    direct = build_resnet(_spec(32), norm_activation, **plugins.fields_of(config.resnet))
    assert direct.count_params() == model.count_params()
    assert not direct.losses


def test_frozen_batch_norm():
    model = ResNet(10, input_specs=_spec(32), depth_multiplier=0.25, bn_trainable=False)
    norms = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms
    assert not any(n.trainable for n in norms)
    trainable = {id(w) for w in model.trainable_weights}
    assert not any(id(w) in trainable for n in norms for w in n.weights)
    assert all(w.path.endswith("kernel") for w in model.trainable_weights)
    before = [w.numpy() for n in norms for w in n.weights]
    model(_images(32), training=True)  # Frozen layers run in inference mode.
    after = [w.numpy() for n in norms for w in n.weights]
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def test_blocks_round_trip_and_put_the_stride_on_the_3x3():
    block = BottleneckBlock(
        filters=8,
        strides=2,
        use_projection=True,
        se_ratio=0.25,
        resnetd_shortcut=True,
        stochastic_depth_drop_rate=0.1,
        kernel_regularizer=keras.regularizers.L2(1e-4),
        activation="swish",
    )
    outputs = block(np.zeros((2, 8, 8, 16), "float32"))
    assert outputs.shape == (2, 4, 4, 32)
    conv1, conv2, conv3 = (
        layer for layer in block.branch.layers if isinstance(layer, keras.layers.Conv2D)
    )
    assert (conv1.strides, conv2.strides, conv3.strides) == ((1, 1), (2, 2), (1, 1))  # v1.5.
    rebuilt = BottleneckBlock.from_config(block.get_config())
    assert rebuilt.get_config() == block.get_config()

    basic = ResidualBlock(filters=8, strides=2, use_projection=True)
    assert basic(np.zeros((1, 8, 8, 4), "float32")).shape == (1, 4, 4, 8)
    assert ResidualBlock.from_config(basic.get_config()).get_config() == basic.get_config()
    with pytest.raises(ValueError, match="use_projection"):
        ResidualBlock(filters=8, strides=1)(np.zeros((1, 4, 4, 4), "float32"))


def test_the_backbone_base_normalizes_input_specs_and_keeps_keras_settings():
    from garden_vision.modeling.backbones.backbone import Backbone as BackboneBase

    for given in ([None, 32, 32, 3], (None, 32, 32, 3), {"shape": [None, 32, 32, 3]}, _spec(32)):
        assert BackboneBase.input_spec_of(given).shape == (None, 32, 32, 3)
    assert ResNet.input_spec_of(None).shape == (None, None, None, 3)
    with pytest.raises(ConfigError, match=r"ResNet `input_specs`.*\[None, 32, 3\]"):
        ResNet.input_spec_of([None, 32, 3])
    with pytest.raises(ConfigError, match="integer or None"):
        ResNet.input_spec_of([None, "a", 32, 3])

    model = ResNet(
        10,
        input_specs=_spec(32),
        depth_multiplier=0.25,
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name="frozen_resnet",
        trainable=False,
    )
    config = model.get_config()
    assert config["name"] == "frozen_resnet"
    assert config["trainable"] is False
    assert "dtype" in config
    assert config["input_specs"] == [None, 32, 32, 3]
    restored = ResNet.from_config(config)
    assert restored.name == "frozen_resnet"
    assert not restored.trainable
    assert restored.get_config() == config
