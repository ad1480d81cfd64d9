"""Shared checks for garden-nlp encoders and models, for its tests and for research packages.

`run_model_test` puts a model (an encoder, a head or a task model) through what a user does
with it: build it and check its output shapes, rebuild it from `get_config`, save it with
`tf.train.Checkpoint` (as training does) and restore it into the rebuilt copy with the same
outputs, train it one step (every trainable variable gets a gradient and the weights
change), export a `tf.Module` serving function as a SavedModel and serve it with the same
outputs, save and reload it as a `.keras` file, and run it under mixed precision. A complete
encoder test is then a few lines:

    def test_tiny_bert(tmp_path):
        run_encoder_test(
            BertEncoder,
            {"vocab_size": 100, "hidden_size": 16, "num_layers": 2,
             "num_attention_heads": 2, "inner_dim": 32},
            make_encoder_inputs(batch_size=2, seq_length=8, vocab_size=100),
            {"sequence_output": (2, 8, 16), "pooled_output": (2, 16),
             "encoder_outputs": [(2, 8, 16)] * 2},
            tmp_path,
        )

Outputs are compared flattened: dict keys, with list items as `key_0`, `key_1`, ... The
checks use plain `assert`s and NumPy, so they run under any test runner.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def make_encoder_inputs(
    batch_size: int = 2,
    seq_length: int = 8,
    vocab_size: int = 100,
    type_vocab_size: int = 2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A random batch of encoder inputs (int32): the last example is padded to half length.

    Returns:
      `{"input_word_ids", "input_mask", "input_type_ids"}`, each `[batch_size, seq_length]`.
    """
    rng = np.random.default_rng(seed)
    word_ids = rng.integers(1, vocab_size, size=(batch_size, seq_length), dtype=np.int32)
    mask = np.ones((batch_size, seq_length), np.int32)
    type_ids = np.zeros((batch_size, seq_length), np.int32)
    type_ids[:, seq_length // 2 :] = min(1, type_vocab_size - 1)
    if batch_size > 1:
        mask[-1, max(1, seq_length // 2) :] = 0
        word_ids[-1, max(1, seq_length // 2) :] = 0
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def flatten_outputs(outputs: Any, prefix: str = "output") -> dict[str, Any]:
    """Outputs as a flat dict of tensors.

    A dict keeps its keys; list and tuple items become `key_0`, `key_1`, ... (so
    `encoder_outputs` becomes `encoder_outputs_0`, ...); a single tensor is `{prefix: x}`
    and a top-level list `{prefix_0: ..., ...}`.
    """
    flat: dict[str, Any] = {}

    def add(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                add(item, f"{key}_{name}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                add(item, f"{key}_{i}")
        else:
            flat[key] = value

    if isinstance(outputs, Mapping):
        for name, item in outputs.items():
            add(item, name)
    else:
        add(outputs, prefix)
    return flat


def _numpy(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {key: np.asarray(keras.ops.convert_to_numpy(v)) for key, v in outputs.items()}


def _assert_close(actual: Mapping, expected: Mapping, what: str, atol: float = 1e-5) -> None:
    assert sorted(actual) == sorted(expected), (
        f"{what}: keys {sorted(actual)} != {sorted(expected)}"
    )
    for key in expected:
        np.testing.assert_allclose(
            np.asarray(actual[key], np.float32),
            np.asarray(expected[key], np.float32),
            atol=atol,
            rtol=atol,
            err_msg=f"{what}: output {key!r} differs",
        )


def check_output_shapes(outputs: Any, expected_output_shapes: Any) -> None:
    """Asserts that `outputs` has exactly the structure and shapes of `expected_output_shapes`.

    `expected_output_shapes` mirrors the outputs: a shape tuple, a list of them, or a dict
    of those (e.g. `{"encoder_outputs": [(2, 8, 16)] * 2, ...}`).
    """

    def is_shape(value: Any) -> bool:
        return isinstance(value, tuple) and all(d is None or isinstance(d, int) for d in value)

    def flat_shapes(value: Any, key: str, out: dict) -> dict:
        if is_shape(value):
            out[key] = value
        elif isinstance(value, Mapping):
            for name, item in value.items():
                flat_shapes(item, f"{key}/{name}", out)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                flat_shapes(item, f"{key}/{i}", out)
        else:
            out[key] = tuple(value.shape)
        return out

    shapes = flat_shapes(outputs, "", {})
    expected = flat_shapes(expected_output_shapes, "", {})
    assert shapes == expected, f"output shapes {shapes} != expected {expected}"


def count_params(layer: keras.layers.Layer) -> int:
    """The number of distinct parameters (trainable or not) of a built layer or model."""
    seen = {id(w): w for w in layer.weights}
    return sum(int(np.prod(w.shape)) for w in seen.values())


def check_train_step(
    model: keras.layers.Layer, input_data: Any, no_gradient: Sequence[str] = ()
) -> None:
    """Trains `model` one SGD step on the mean square of all its outputs.

    Asserts that the loss is finite, that every trainable variable gets a gradient (except
    those whose path contains one of `no_gradient`, e.g. an encoder's pooler under a span
    head, which never reads it) and that the step changes the weights.
    """
    variables = model.trainable_variables
    assert variables, "the model has no trainable variables"
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    with tf.GradientTape() as tape:
        outputs = flatten_outputs(model(input_data, training=True))
        loss = tf.add_n(
            [tf.reduce_mean(tf.cast(value, tf.float32) ** 2) for value in outputs.values()]
        )
        if model.losses:
            loss += tf.add_n(model.losses)
    gradients = tape.gradient(loss, variables)
    missing = [
        v.path
        for v, g in zip(variables, gradients, strict=True)
        if g is None and not any(part in v.path for part in no_gradient)
    ]
    assert not missing, f"no gradient reaches {missing}"
    assert np.isfinite(float(loss)), f"training loss is {float(loss)}"
    pairs = [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
    keras.optimizers.SGD(learning_rate=0.1).apply_gradients(pairs)
    changed = any(
        not np.array_equal(old, keras.ops.convert_to_numpy(v))
        for old, v in zip(before, variables, strict=True)
    )
    assert changed, "one training step changed no weight"


def check_config_round_trip(
    model: keras.layers.Layer, input_data: Any, expected_output_shapes: Any
) -> keras.layers.Layer:
    """Rebuilds `model` from `get_config()`; asserts the same output shapes and size.

    Returns:
      The rebuilt (and built) copy.
    """
    rebuilt = type(model).from_config(model.get_config())
    check_output_shapes(rebuilt(input_data, training=False), expected_output_shapes)
    assert count_params(rebuilt) == count_params(model), "from_config changed the model size"
    return rebuilt


def check_checkpoint_round_trip(
    model: keras.layers.Layer,
    rebuilt: keras.layers.Layer,
    input_data: Any,
    tmp_path: str,
) -> None:
    """Saves `model` with `tf.train.Checkpoint` (as garden-core's trainer does), restores it
    into `rebuilt` (a fresh, built copy) and asserts every weight and output comes back.

    This catches a Keras 3 pitfall: layers held in a Python list attribute are invisible to
    `tf.train.Checkpoint`, so their weights would silently be left out of training
    checkpoints.
    """
    saved = tf.train.Checkpoint(model=model).save(os.path.join(str(tmp_path), "ckpt", "ckpt"))
    stored = [name for name, _ in tf.train.list_variables(saved) if name.startswith("model/")]
    num_weights = len({id(w) for w in model.weights})
    assert len(stored) == num_weights, (
        f"tf.train.Checkpoint holds {len(stored)} of the model's {num_weights} weights: "
        "some layer keeps sublayers in a list attribute"
    )
    status = tf.train.Checkpoint(model=rebuilt).read(saved)
    status.assert_existing_objects_matched().expect_partial()
    for restored, original in zip(rebuilt.weights, model.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored),
            keras.ops.convert_to_numpy(original),
            err_msg=f"checkpoint restore of {original.path}",
        )
    expected = _numpy(flatten_outputs(model(input_data, training=False)))
    actual = _numpy(flatten_outputs(rebuilt(input_data, training=False)))
    _assert_close(actual, expected, "restored from a checkpoint")


def check_saved_model_round_trip(model: keras.layers.Layer, input_data: Any, tmp_path: str) -> None:
    """Exports a `tf.Module` serving signature of `model`, reloads it and serves it.

    Asserts that the signature keeps the input names and dtypes, and that it reproduces the
    model's outputs.
    """
    specs = {
        key: tf.TensorSpec([None] * np.ndim(value), tf.as_dtype(np.asarray(value).dtype), key)
        for key, value in input_data.items()
    }
    module = tf.Module()
    module.model = model

    @tf.function(input_signature=[specs])
    def serve(inputs):
        return flatten_outputs(model(inputs, training=False))

    module.serve = serve
    export_dir = os.path.join(str(tmp_path), "saved_model")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": serve})
    loaded = tf.saved_model.load(export_dir)  # Keep a reference: it owns the variables.
    signature = loaded.signatures["serving_default"]
    _, input_specs = signature.structured_input_signature
    assert {k: v.dtype for k, v in input_specs.items()} == {k: v.dtype for k, v in specs.items()}
    served = signature(**{key: tf.constant(value) for key, value in input_data.items()})
    expected = _numpy(flatten_outputs(model(input_data, training=False)))
    _assert_close(_numpy(served), expected, "SavedModel", atol=1e-4)


def check_keras_file_round_trip(model: keras.layers.Layer, input_data: Any, tmp_path: str) -> None:
    """Saves `model` as a `.keras` file (config and weights), reloads it, compares outputs."""
    path = os.path.join(str(tmp_path), "model.keras")
    wrapper = model if isinstance(model, keras.Model) else _wrap(model, input_data)
    wrapper.save(path)
    reloaded = keras.saving.load_model(path)
    expected = _numpy(flatten_outputs(wrapper(input_data, training=False)))
    actual = _numpy(flatten_outputs(reloaded(input_data, training=False)))
    _assert_close(actual, expected, ".keras")


def _wrap(layer: keras.layers.Layer, input_data: Mapping[str, np.ndarray]) -> keras.Model:
    """A functional model around `layer`, so that a layer can be saved as a `.keras` file."""
    inputs = {
        key: keras.Input(shape=np.shape(value)[1:], dtype=str(np.asarray(value).dtype), name=key)
        for key, value in input_data.items()
    }
    return keras.Model(inputs, layer(inputs))


def check_mixed_precision(
    make_model: Callable[[], keras.layers.Layer],
    input_data: Any,
    policy: str = "mixed_float16",
) -> dict[str, np.ndarray]:
    """Builds a model under the `policy` dtype policy; asserts its outputs are finite.

    Returns:
      The flattened outputs (NumPy), e.g. to check their dtypes.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = make_model()
        outputs = _numpy(flatten_outputs(model(input_data, training=False)))
    finally:
        keras.config.set_dtype_policy(previous)
    for key, value in outputs.items():
        assert np.all(np.isfinite(value.astype(np.float32))), f"{policy}: {key!r} is not finite"
    return outputs


def run_model_test(
    make_model: Callable[[], keras.layers.Layer],
    input_data: Any,
    expected_output_shapes: Any,
    tmp_path: str,
    run_training: bool = True,
    run_saving: bool = True,
    run_mixed_precision: bool = True,
    no_gradient: Sequence[str] = (),
) -> keras.layers.Layer:
    """Runs every shared check (see the module docstring); returns the model.

    Args:
      make_model: Returns a fresh model (keep the sizes tiny); it is called again for the
        mixed-precision check.
      input_data: A batch of inputs (a dict of NumPy arrays, see `make_encoder_inputs`).
      expected_output_shapes: The output shapes, batch dimension included, structured like
        the outputs.
      tmp_path: A scratch directory for the saved files.
      run_training, run_saving, run_mixed_precision: Turn single checks off.
      no_gradient: Variable-path parts that legitimately get no gradient (see
        `check_train_step`).
    """
    model = make_model()
    check_output_shapes(model(input_data, training=False), expected_output_shapes)
    rebuilt = check_config_round_trip(model, input_data, expected_output_shapes)
    check_checkpoint_round_trip(model, rebuilt, input_data, tmp_path)
    if run_saving:
        check_saved_model_round_trip(model, input_data, tmp_path)
        check_keras_file_round_trip(model, input_data, tmp_path)
    if run_training:
        check_train_step(model, input_data, no_gradient=no_gradient)
    if run_mixed_precision:
        check_mixed_precision(make_model, input_data)
    return model


def run_encoder_test(
    encoder_class: type[keras.layers.Layer],
    init_kwargs: Mapping[str, Any],
    input_data: Any,
    expected_output_shapes: Any,
    tmp_path: str,
    **flags: Any,
) -> keras.layers.Layer:
    """`run_model_test` for `encoder_class(**init_kwargs)`; `flags` as there."""
    return run_model_test(
        lambda: encoder_class(**init_kwargs),
        input_data,
        expected_output_shapes,
        tmp_path,
        **flags,
    )
