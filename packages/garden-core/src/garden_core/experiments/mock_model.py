"""The `mock_mlp` model builder (`garden.models`): the model of the `mock` experiment.

Registered like any model plugin and built by `MockTask` through the registry:

    plugins.build_named("models", "mock_mlp", task_config.model, "task.model")

so it is called with the fields of `MockModelConfig` as keyword settings.
"""

from __future__ import annotations

import keras

from garden_core.experiments.mock import MockModelConfig


def build_mock_mlp(
    *,
    input_size: int,
    hidden_size: int,
    num_hidden_layers: int,
    num_classes: int,
    use_batch_norm: bool,
) -> keras.Model:
    """A multilayer perceptron from `features` (`input_size` floats) to class logits.

    Args:
      input_size: The number of input features.
      hidden_size: The width of each hidden layer.
      num_hidden_layers: How many Dense (+ BatchNormalization) + ReLU layers.
      num_classes: The number of logits.
      use_batch_norm: Whether to normalize each hidden layer's outputs.

    Returns:
      A Keras model named `mock_model`, whose outputs are float32 logits whatever the
      compute dtype, for a stable loss.
    """
    inputs = keras.Input(shape=(input_size,), name="features")
    x = inputs
    for i in range(num_hidden_layers):
        x = keras.layers.Dense(hidden_size, name=f"hidden_{i}")(x)
        if use_batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation("relu")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="outputs")(logits)
    return keras.Model(inputs, outputs, name="mock_model")


build_mock_mlp.config_class = MockModelConfig
