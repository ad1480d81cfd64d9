"""The shared layers: fused batch normalization, stochastic depth, squeeze-excitation."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.modeling.layers import (
    BatchNormalization,
    SqueezeExcitation,
    StochasticDepth,
    get_activation,
    make_divisible,
)

X = np.random.default_rng(0).normal(2.0, 3.0, size=(8, 5, 5, 4)).astype("float32")


def _pair(**kwargs):
    reference, fused = keras.layers.BatchNormalization(**kwargs), BatchNormalization(**kwargs)
    reference.build(X.shape)
    fused.build(X.shape)
    values = np.random.default_rng(1).uniform(0.5, 1.5, size=(2, 4)).astype("float32")
    for layer in (reference, fused):
        layer.gamma.assign(values[0])
        layer.beta.assign(values[1] - 1.0)
    return reference, fused


def test_fused_batch_norm_trains_like_keras():
    reference, fused = _pair(momentum=0.9, epsilon=1e-3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(tf.constant(X))
        expected = reference(X, training=True)
        actual = fused(X, training=True)
        loss_reference = tf.reduce_sum(expected**2)
        loss_fused = tf.reduce_sum(actual**2)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, atol=1e-6)
    # The moving variance is updated with the unbiased batch variance (n / (n - 1)).
    n = X.shape[0] * X.shape[1] * X.shape[2]
    batch_variance = np.var(X, axis=(0, 1, 2))
    np.testing.assert_allclose(
        fused.moving_variance, 0.9 + 0.1 * batch_variance * n / (n - 1), rtol=1e-5
    )
    for a, b in zip(
        tape.gradient(loss_fused, [fused.gamma, fused.beta]),
        tape.gradient(loss_reference, [reference.gamma, reference.beta]),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4)


def test_fused_batch_norm_infers_with_the_moving_statistics():
    reference, fused = _pair()
    for layer in (reference, fused):
        layer.moving_mean.assign([1.0, 2.0, 3.0, 4.0])
        layer.moving_variance.assign([1.0, 4.0, 9.0, 16.0])
    np.testing.assert_allclose(fused(X, training=False), reference(X, training=False), atol=1e-5)
    frozen = BatchNormalization(trainable=False)
    frozen.build(X.shape)
    frozen(X, training=True)  # A frozen layer never updates its statistics.
    np.testing.assert_array_equal(frozen.moving_mean, np.zeros(4))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_fused_batch_norm_under_mixed_precision(policy):
    layer = BatchNormalization(dtype=policy)
    outputs = layer(X, training=True)
    assert outputs.dtype == keras.mixed_precision.Policy(policy).compute_dtype
    assert layer.moving_mean.dtype == "float32"
    assert np.all(np.isfinite(np.asarray(tf.cast(outputs, tf.float32))))


def test_fused_batch_norm_falls_back_where_it_cannot_fuse():
    sequence = X.reshape(8, 25, 4)  # 3-D: Keras' implementation.
    reference, fused = keras.layers.BatchNormalization(), BatchNormalization()
    np.testing.assert_allclose(
        fused(sequence, training=True), reference(sequence, training=True), atol=1e-5
    )
    synchronized = BatchNormalization(synchronized=True)
    assert synchronized(X, training=True).shape == X.shape


def _graph_ops(layer, inputs) -> set[str]:
    function = tf.function(lambda x: layer(x, training=True))
    return {op.type for op in function.get_concrete_function(inputs).graph.get_operations()}


def test_synchronized_batch_norm_fuses_on_a_single_replica():
    # Without a distribution strategy (or with one device) the synchronized statistics are
    # the local ones: same outputs and gradients as Keras' synchronized layer, fused kernel.
    reference, fused = _pair(momentum=0.9, synchronized=True)
    with tf.GradientTape(persistent=True) as tape:
        expected = reference(X, training=True)
        actual = fused(X, training=True)
        loss_reference = tf.reduce_sum(expected**3)
        loss_fused = tf.reduce_sum(actual**3)
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, atol=1e-6)
    for a, b in zip(
        tape.gradient(loss_fused, [fused.gamma, fused.beta]),
        tape.gradient(loss_reference, [reference.gamma, reference.beta]),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-3)
    assert "FusedBatchNormV3" in _graph_ops(fused, tf.constant(X))
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        one_device = BatchNormalization(synchronized=True)
    assert "FusedBatchNormV3" in _graph_ops(one_device, tf.constant(X))


def test_synchronized_batch_norm_uses_global_statistics_across_replicas():
    # Two replicas, each with half of the batch: the outputs are normalized by the moments
    # of the whole batch (NumPy), which the fused kernel could not compute.
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from garden_vision.modeling.layers import BatchNormalization
        x = np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype("float32")
        x[2:] += 5.0  # The second replica's half has another mean.
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = BatchNormalization(synchronized=True, epsilon=1e-6)
            layer.build(x.shape)
        def step():
            index = tf.distribute.get_replica_context().replica_id_in_sync_group
            return layer(tf.gather(tf.constant(x.reshape(2, 2, 3, 3, 2)), index), training=True)
        outputs = strategy.experimental_local_results(strategy.run(tf.function(step)))
        np.save("outputs.npy", np.concatenate([np.asarray(o) for o in outputs]))
        np.save("inputs.npy", x)
        """
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as directory:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=directory,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs = np.load(os.path.join(directory, "outputs.npy"))
        x = np.load(os.path.join(directory, "inputs.npy"))
    expected = (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-6)
    np.testing.assert_allclose(outputs, expected, atol=1e-4)


def test_fused_batch_norm_serializes():
    layer = BatchNormalization(momentum=0.5, epsilon=1e-5, name="bn")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is BatchNormalization
    assert (clone.momentum, clone.epsilon) == (0.5, 1e-5)


def test_stochastic_depth_drops_whole_examples_only_in_training():
    layer = StochasticDepth(0.5, seed=1)
    ones = np.ones((2000, 3), "float32")
    np.testing.assert_array_equal(layer(ones, training=False), ones)
    dropped = np.asarray(layer(ones, training=True))
    assert set(np.unique(dropped)) <= {0.0, 2.0}
    assert np.all(dropped.min(axis=1) == dropped.max(axis=1))  # Whole examples.
    assert abs(np.mean(dropped) - 1.0) < 0.1
    with pytest.raises(ValueError, match="drop_rate"):
        StochasticDepth(1.0)


def test_squeeze_excitation_gates_channels():
    layer = SqueezeExcitation(in_filters=16, out_filters=16, se_ratio=0.25)
    x = np.random.default_rng(2).uniform(size=(2, 4, 4, 16)).astype("float32")
    y = np.asarray(layer(x))
    assert layer.count_params() == (16 * 4 + 4) + (4 * 16 + 16)
    gate = y / x  # One sigmoid gate in (0, 1) per example and channel.
    np.testing.assert_allclose(gate, gate[:, :1, :1, :] * np.ones_like(gate), rtol=1e-4)
    assert np.all((gate > 0) & (gate < 1))


def test_make_divisible_and_activation_names():
    assert make_divisible(32 * 0.75) == 24
    assert make_divisible(3, 8) == 8
    assert make_divisible(10, 8) == 16  # Never more than 10 % below the value.
    assert get_activation("swish")(np.array([0.0]))[0] == 0.0
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        get_activation("swishy")
