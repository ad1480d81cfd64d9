"""The weight-decay L2 regularizer: Keras' definition, TensorFlow's fused kernel."""

import keras
import numpy as np
import tensorflow as tf

from garden_vision.modeling import factory, regularizers


def test_l2_value_and_gradient_match_the_definition():
    weights = np.random.default_rng(0).normal(size=(3, 3, 8, 4)).astype(np.float32)
    variable = tf.Variable(weights)
    regularizer = regularizers.L2(5e-5)
    with tf.GradientTape() as tape:
        penalty = regularizer(variable)
    # l2 * sum(w^2), gradient 2 * l2 * w (Keras' L2 definition).
    np.testing.assert_allclose(penalty, 5e-5 * np.sum(weights.astype(np.float64) ** 2), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(penalty, variable), 1e-4 * weights, rtol=1e-6)
    np.testing.assert_allclose(penalty, keras.regularizers.L2(5e-5)(variable), rtol=1e-6)


def test_l2_uses_the_fused_kernel_and_serializes():
    graph = (
        tf.function(regularizers.L2(1e-4))
        .get_concrete_function(tf.TensorSpec([8, 4], tf.float32))
        .graph
    )
    assert "L2Loss" in {op.type for op in graph.get_operations()}
    restored = keras.regularizers.deserialize(keras.regularizers.serialize(regularizers.L2(0.25)))
    assert type(restored) is regularizers.L2
    assert restored.l2 == 0.25


def test_weight_decay_is_half_the_rate_as_in_model_garden():
    # Model Garden regularizes kernels with l2(l2_weight_decay / 2).
    assert factory.l2_regularizer(0.0) is None
    regularizer = factory.l2_regularizer(1e-4)
    assert type(regularizer) is regularizers.L2
    assert regularizer.l2 == 5e-5


def test_layer_losses_in_a_model_use_it():
    layer = keras.layers.Dense(3, kernel_regularizer=factory.l2_regularizer(2e-4))
    layer.build((None, 2))
    kernel = layer.kernel.numpy()
    np.testing.assert_allclose(layer.losses[0], 1e-4 * np.sum(kernel**2), rtol=1e-6)
