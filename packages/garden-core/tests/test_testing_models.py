"""garden_core.testing.models: the shared checks pass a sound model and fail broken ones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core.testing import models as checks

INPUTS = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")


@keras.saving.register_keras_serializable("garden_core_tests")
class TinyModel(keras.Model):
    """Two dense layers; follows the global dtype policy like any Keras model."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(5, activation="relu")
        self.out = keras.layers.Dense(units)

    def call(self, inputs, training=False):
        return {"features": self.hidden(inputs), "logits": self.out(self.hidden(inputs))}

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class FixedFloat32Layers(keras.Model):
    """Ignores the policy: builds its layers in float32 whatever the global policy says."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3, dtype="float32")

    def call(self, inputs):
        return self.dense(inputs)


class ComputesInFloat32(keras.Layer):
    """Ignores the policy another way: casts its inputs and weights to float32 itself."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3))

    def call(self, inputs):
        return tf.matmul(tf.cast(inputs, tf.float32), tf.cast(self.kernel, tf.float32))


def test_a_sound_model_passes_every_check(tmp_path):
    model = checks.run_model_test(
        TinyModel,
        INPUTS,
        {"features": (2, 5), "logits": (2, 3)},
        tmp_path,
        use_keras_export=False,
    )
    assert checks.count_params(model) == 4 * 5 + 5 + 5 * 3 + 3


def test_mixed_precision_asserts_the_policy_s_dtypes():
    outputs = checks.check_mixed_precision(TinyModel, INPUTS, policy="mixed_float16")
    assert outputs["logits"].dtype == np.float16
    with pytest.raises(AssertionError, match="output 'logits' is float16, expected float32"):
        checks.check_mixed_precision(TinyModel, INPUTS, float32_outputs={"logits"})


@pytest.mark.parametrize("make_model", [FixedFloat32Layers, ComputesInFloat32])
def test_a_model_that_ignores_the_policy_fails_the_mixed_precision_check(make_model):
    with pytest.raises(AssertionError, match="mixed_float16: .*(ignore the policy|is float32)"):
        checks.check_mixed_precision(make_model, INPUTS, policy="mixed_float16")


def test_a_model_that_ignores_the_policy_still_gives_finite_outputs():
    """What the old check asserted (finite outputs) holds here too, so it could not fail."""
    keras.config.set_dtype_policy("mixed_float16")
    try:
        outputs = FixedFloat32Layers()(INPUTS)
    finally:
        keras.config.set_dtype_policy("float32")
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(outputs)))


def test_a_variable_that_no_gradient_reaches_fails_the_train_step():
    class Unused(keras.Model):
        def __init__(self):
            super().__init__()
            self.used = keras.layers.Dense(2)
            self.unused = keras.layers.Dense(2, name="unused")

        def call(self, inputs):
            self.unused(inputs)
            return self.used(inputs)

    model = Unused()
    model(INPUTS)
    with pytest.raises(AssertionError, match="no gradient reaches.*unused"):
        checks.check_train_step(model, INPUTS)
    checks.check_train_step(model, INPUTS, no_gradient=("unused",))


def test_output_shapes_compare_structure_and_shapes():
    outputs = {"a": np.zeros((2, 3)), "b": [np.zeros((2, 1)), np.zeros((2, 1))]}
    checks.check_output_shapes(outputs, {"a": (2, 3), "b": [(2, 1), [2, 1]]})
    with pytest.raises(AssertionError, match="output shapes"):
        checks.check_output_shapes(outputs, {"a": (2, 3), "b": [(2, 1)]})
