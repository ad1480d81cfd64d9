"""RevNet backbone and its reversible blocks, including the memory-saving gradient."""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core.config import ConfigError
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.backbones import RevNet as RevNetConfig
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.backbones.revnet import REVNET_SPECS, RevNet
from garden_vision.modeling.layers.reversible_blocks import ReversibleBlock
from garden_vision.testing import run_backbone_test


@contextlib.contextmanager
def shapes_only():
    """Builds models with their variables' shapes but without initializing them."""
    with keras.StatelessScope(initialize_variables=False):
        yield
    keras.utils.clear_session()  # Forgets the uninitialized variables.


@contextlib.contextmanager
def count_manual_calls(monkeypatch):
    """Counts the calls that take the custom-gradient path of `ReversibleBlock`."""
    calls = []
    original = ReversibleBlock._reversible_call

    def spy(self, *args, **kwargs):
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ReversibleBlock, "_reversible_call", spy)
    yield calls


def _spec(size: int | None = 32) -> keras.layers.InputSpec:
    return keras.layers.InputSpec(shape=[None, size, size, 3])


def _images(size: int = 32) -> np.ndarray:
    return np.random.RandomState(0).rand(2, size, size, 3).astype("float32")


def _gradients(model, inputs, training: bool, compiled: bool):
    """Outputs and the gradients of a loss on them for the inputs and every trainable weight."""

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = model(x, training=training)
            if isinstance(outputs, dict):
                outputs = list(outputs.values())
            else:
                outputs = [outputs]
            loss = tf.add_n([tf.reduce_sum(tf.sin(o)) for o in outputs])
        return [*outputs, *tape.gradient(loss, [x, *model.trainable_variables])]

    if compiled:
        step = tf.function(step)
    return [np.asarray(t) for t in step(tf.constant(inputs))]


def _assert_all_close(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        scale = max(1.0, float(np.max(np.abs(e))))
        np.testing.assert_allclose(a, e, atol=1e-4 * scale, rtol=1e-4)


# Model Garden's RevNet depths: `REVNET_SPECS` in official/vision/modeling/backbones/revnet.py
# of tf-models-official 2.20, (block type, channels, blocks) per group. Its docstring cites
# Gomez et al. 2017, "The Reversible Residual Network": RevNet-38 has the paper's CIFAR
# groups of 32, 64 and 112 channels (0.46M parameters there, with a 3x3 stem and 10 classes).
MODEL_GARDEN_REVNET_SPECS = {
    38: (("residual", 32, 3), ("residual", 64, 3), ("residual", 112, 3)),
    56: (
        ("bottleneck", 128, 2),
        ("bottleneck", 256, 2),
        ("bottleneck", 512, 3),
        ("bottleneck", 832, 2),
    ),
    104: (
        ("bottleneck", 128, 2),
        ("bottleneck", 256, 2),
        ("bottleneck", 512, 11),
        ("bottleneck", 832, 2),
    ),
}


def _analytic_parameter_count(model_id: int, num_classes: int = 1000) -> int:
    """Trainable parameters of Model Garden's RevNet (+ a dense head), counted by hand."""
    specs = MODEL_GARDEN_REVNET_SPECS[model_id]
    channels = specs[0][1]
    total = 7 * 7 * 3 * channels + 2 * channels  # Stem convolution and batch norm.
    for index, (block_type, width, repeats) in enumerate(specs):
        k = width // 2
        for repeat in range(repeats):
            bn_first = index > 0 and repeat == 0
            for half_in in (channels // 2, None):  # F, then G (on F's output).
                c = half_in if half_in is not None else (4 * k if block_type == "bottleneck" else k)
                params = 2 * c if bn_first else 0
                if block_type == "residual":
                    params += 9 * c * k + 2 * k + 9 * k * k
                else:
                    params += c * k + 2 * k + 9 * k * k + 2 * k + k * 4 * k
                total += params
            channels = 2 * (4 * k if block_type == "bottleneck" else k)
    return total + channels * num_classes + num_classes


def test_revnet38_backbone(tmp_path):
    run_backbone_test(
        RevNet,
        init_kwargs={"model_id": 38, "input_specs": _spec()},
        input_data=_images(),
        expected_output_shapes={"2": (2, 8, 8, 32), "3": (2, 4, 4, 64), "4": (2, 2, 2, 112)},
        tmp_path=tmp_path,
    )


def test_depths_are_model_garden_s():
    assert {key: tuple(map(tuple, value)) for key, value in REVNET_SPECS.items()} == (
        MODEL_GARDEN_REVNET_SPECS
    )


@pytest.mark.parametrize("model_id", sorted(MODEL_GARDEN_REVNET_SPECS))
def test_shapes_blocks_and_parameter_counts(model_id):
    with shapes_only():
        backbone = RevNet(model_id, input_specs=_spec(224))
        blocks = [layer for layer in backbone.layers if isinstance(layer, ReversibleBlock)]
        # The depth in the name counts layers: 38 = 9 blocks x 2 functions x 2 convolutions
        # + stem + head; 56 = 9 x 2 x 3 + 2 and 104 = 17 x 2 x 3 + 2 (bottlenecks).
        assert len(blocks) == {38: 9, 56: 9, 104: 17}[model_id]
        # Only blocks that downsample or widen (the first of a group, except RevNet-38's
        # first, which keeps the stem's 32 channels) are not invertible.
        assert [b.invertible for b in blocks].count(False) == {38: 2, 56: 4, 104: 4}[model_id]
        inputs = keras.Input((224, 224, 3))
        last = backbone(inputs)[max(backbone.output_specs)]
        pooled = keras.layers.GlobalAveragePooling2D()(last)
        model = keras.Model(inputs, keras.layers.Dense(1000)(pooled))
        count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    if model_id == 38:
        assert backbone.output_specs == {
            "2": (None, 56, 56, 32),
            "3": (None, 28, 28, 64),
            "4": (None, 14, 14, 112),
        }
    else:  # Bottleneck groups output 4x their listed channels (Model Garden's test).
        assert backbone.output_specs == {
            "2": (None, 56, 56, 512),
            "3": (None, 28, 28, 1024),
            "4": (None, 14, 14, 2048),
            "5": (None, 7, 7, 3328),
        }
    assert count == _analytic_parameter_count(model_id)
    # RevNet-56: 22.78 M with a 1000-class head (19.45 M in the backbone);
    # RevNet-104: 40.62 M. The paper's RevNet-38 (CIFAR) has 0.46 M; ours, with the
    # ImageNet stem and a 1000-class head instead of 10, has 0.58 M.
    expected_millions = {38: 0.58, 56: 22.78, 104: 40.62}[model_id]
    assert count / 1e6 == pytest.approx(expected_millions, abs=0.01)


@pytest.mark.parametrize("block_type", ["residual", "bottleneck"])
def test_reversible_block_inverts_and_its_gradient_matches_autodiff(block_type, monkeypatch):
    filters, channels = (4, 8) if block_type == "residual" else (2, 16)
    inputs = np.random.RandomState(1).randn(2, 6, 6, channels).astype("float32")
    manual = ReversibleBlock(block_type, filters, batch_norm_first=True)
    plain = ReversibleBlock(block_type, filters, batch_norm_first=True, manual_gradients=False)
    manual.build(inputs.shape)
    plain.build(inputs.shape)
    plain.set_weights(manual.get_weights())
    assert manual.invertible

    # The input is recovered from the output: x2 = y2 - G(y1), x1 = y1 - F(x2).
    outputs = manual(inputs, training=False)
    y1, y2 = np.split(np.asarray(outputs), 2, axis=-1)
    x2 = y2 - np.asarray(manual.g(y1, training=False))
    x1 = y1 - np.asarray(manual.f(x2, training=False))
    np.testing.assert_allclose(np.concatenate([x1, x2], axis=-1), inputs, atol=1e-4)

    with count_manual_calls(monkeypatch) as calls:
        for training in (True, False):
            for compiled in (False, True):
                _assert_all_close(
                    _gradients(manual, inputs, training, compiled),
                    _gradients(plain, inputs, training, compiled),
                )
    assert calls  # The custom gradient was the one compared.
    # Both updated their batch-norm statistics the same way (once per training call).
    for a, b in zip(manual.non_trainable_variables, plain.non_trainable_variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_revnet_gradient_matches_autodiff(monkeypatch):
    manual = RevNet(38, input_specs=_spec())
    plain = RevNet(38, input_specs=_spec(), manual_gradients=False)
    plain.set_weights(manual.get_weights())
    with count_manual_calls(monkeypatch) as calls:
        for compiled in (False, True):
            _assert_all_close(
                _gradients(manual, _images(), training=True, compiled=compiled),
                _gradients(plain, _images(), training=True, compiled=compiled),
            )
    assert len(calls) >= 7  # The seven invertible blocks of RevNet-38.


def test_custom_gradient_under_mixed_precision(monkeypatch):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = RevNet(38, input_specs=_spec())
        with count_manual_calls(monkeypatch) as calls:
            with tf.GradientTape() as tape:
                outputs = model(_images(), training=True)
                loss = tf.add_n(
                    [tf.reduce_mean(tf.cast(o, "float32") ** 2) for o in outputs.values()]
                )
            gradients = tape.gradient(loss, model.trainable_variables)
    finally:
        keras.config.set_dtype_policy(previous)
    assert calls
    assert outputs["4"].dtype == "bfloat16"
    assert all(g is not None and g.dtype == "float32" for g in gradients)
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients)


def test_unsupported_model_id_raises_config_error():
    with pytest.raises(ConfigError, match=r"model_id.*50.*38, 56, 104"):
        RevNet(50)
    with pytest.raises(ConfigError, match="model_id"):
        build_backbone(_spec(), Backbone(type="revnet", revnet=RevNetConfig(model_id=55)))


def test_builder_honours_norm_activation_and_l2():
    model = build_backbone(
        _spec(),
        Backbone(type="revnet", revnet=RevNetConfig(model_id=38)),
        NormActivation(activation="swish", use_sync_bn=False, norm_momentum=0.9, norm_epsilon=1e-4),
        l2_regularizer=keras.regularizers.L2(1e-4),
    )
    assert isinstance(model, RevNet)
    layers = list(model._flatten_layers(include_self=False))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms
    assert all(n.momentum == 0.9 and n.epsilon == 1e-4 for n in norms)
    activations = [layer for layer in layers if isinstance(layer, keras.layers.Activation)]
    assert activations
    assert all(a.activation is keras.activations.silu for a in activations)
    convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(model.losses) == len(convs) > 0
    assert len(RevNet.from_config(model.get_config()).losses) == len(convs)
