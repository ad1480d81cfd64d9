"""Shared checks for Keras models and layers, for every Garden package's tests and plugins.

Each check puts a model through one thing a user does with it and fails with a plain
`assert` that says what went wrong:

- `check_output_shapes`: the outputs have exactly the structure and shapes expected.
- `check_config_round_trip`: `from_config(get_config())` rebuilds the same architecture.
- `check_checkpoint_round_trip`: `tf.train.Checkpoint` (what training saves) holds every
  weight and restores it into a rebuilt copy with the same outputs.
- `check_train_step`: one SGD step reaches every trainable variable and changes weights.
- `check_saved_model_round_trip`: a `tf.Module` serving signature exported as a SavedModel
  keeps its input names and dtypes and serves the same outputs.
- `check_export_round_trip`: `model.export(...)` (Keras' own SavedModel export) serves the
  same outputs.
- `check_keras_file_round_trip`: a `.keras` file reloads with the same outputs.
- `check_mixed_precision`: under a mixed dtype policy the model really computes in the
  policy's compute dtype and keeps float32 variables.

`run_model_test` runs them all. Domain packages add thin layers on top
(`garden_vision.testing.run_backbone_test`, `garden_nlp.testing.run_encoder_test`).

Outputs are compared flattened (`flatten_outputs`): dict keys, with list items as `key_0`,
`key_1`, ... The checks use NumPy and plain `assert`s (no pytest), so they run under any test
runner. This module is not imported by `import garden_core`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


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


def to_numpy(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """`{key: tensor}` as `{key: NumPy array}`."""
    return {key: np.asarray(keras.ops.convert_to_numpy(v)) for key, v in outputs.items()}


def assert_close(actual: Mapping, expected: Mapping, what: str, atol: float = 1e-5) -> None:
    """Asserts two flat output dicts have the same keys and values within `atol` (and rtol).

    Args:
      actual: Key -> array.
      expected: Key -> array.
      what: Names the comparison in the failure message (e.g. "SavedModel").
      atol: Absolute and relative tolerance.
    """
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


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or isinstance(d, (int, np.integer)) for d in value
    )


def _flat_shapes(value: Any, key: str, out: dict) -> dict:
    if _is_shape(value):
        out[key] = tuple(None if d is None else int(d) for d in value)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            _flat_shapes(item, f"{key}/{name}", out)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _flat_shapes(item, f"{key}/{i}", out)
    else:
        out[key] = tuple(value.shape)
    return out


def check_output_shapes(outputs: Any, expected_output_shapes: Any) -> None:
    """Asserts that `outputs` has exactly the structure and shapes of `expected_output_shapes`.

    `expected_output_shapes` mirrors the outputs: a shape (tuple or list of ints), a list of
    shapes, or a dict of those (e.g. `{"encoder_outputs": [(2, 8, 16)] * 2, ...}`). Batch
    dimensions are included.
    """
    shapes = _flat_shapes(outputs, "", {})
    expected = _flat_shapes(expected_output_shapes, "", {})
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
            loss += tf.add_n([tf.cast(value, tf.float32) for value in model.losses])
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
    assert count_params(rebuilt) == count_params(model), (
        f"from_config changed the model size: {count_params(rebuilt)} parameters, "
        f"not {count_params(model)}"
    )
    return rebuilt


def check_checkpoint_round_trip(
    model: keras.layers.Layer,
    rebuilt: keras.layers.Layer,
    input_data: Any,
    tmp_path: str | os.PathLike,
) -> None:
    """Saves `model` with `tf.train.Checkpoint` (as garden-core's trainer does), restores it
    into `rebuilt` (a fresh, built copy) and asserts every weight and output comes back.

    This catches a Keras 3 pitfall: layers held in a Python list attribute are invisible to
    `tf.train.Checkpoint`, so their weights would silently be left out of training
    checkpoints (`.keras` files still hold them). Keep sublayers in attributes,
    `keras.Sequential`s or functional models.
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
    expected = to_numpy(flatten_outputs(model(input_data, training=False)))
    actual = to_numpy(flatten_outputs(rebuilt(input_data, training=False)))
    assert_close(actual, expected, "restored from a checkpoint")


def _input_specs(input_data: Any) -> Any:
    """`tf.TensorSpec`s with a free batch dimension (all dimensions free) for `input_data`."""

    def spec(value: Any, name: str) -> tf.TensorSpec:
        array = np.asarray(value)
        return tf.TensorSpec([None] * array.ndim, tf.as_dtype(array.dtype), name)

    if isinstance(input_data, Mapping):
        return {key: spec(value, key) for key, value in input_data.items()}
    return spec(input_data, "inputs")


def check_saved_model_round_trip(
    model: keras.layers.Layer, input_data: Any, tmp_path: str | os.PathLike
) -> None:
    """Exports a `tf.Module` serving signature of `model`, reloads it and serves it.

    Works for a model called on one array or on a dict of arrays. Asserts that the signature
    keeps the input names and dtypes, and that it reproduces the model's outputs.
    """
    specs = _input_specs(input_data)
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
    _, served_specs = signature.structured_input_signature
    flat_specs = specs if isinstance(specs, Mapping) else {specs.name: specs}
    assert {k: v.dtype for k, v in served_specs.items()} == {
        k: v.dtype for k, v in flat_specs.items()
    }, f"the SavedModel signature takes {served_specs}, not {flat_specs}"
    feed = input_data if isinstance(input_data, Mapping) else {"inputs": input_data}
    served = signature(**{key: tf.constant(value) for key, value in feed.items()})
    expected = to_numpy(flatten_outputs(model(input_data, training=False)))
    assert_close(to_numpy(served), expected, "SavedModel", atol=1e-4)


def check_export_round_trip(
    model: keras.Model, input_data: Any, tmp_path: str | os.PathLike
) -> None:
    """Exports `model` with Keras' `model.export` (a SavedModel), reloads it and serves it."""
    export_dir = os.path.join(str(tmp_path), "exported")
    model.export(export_dir, format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(export_dir)  # Keep a reference: it owns the variables.
    if isinstance(input_data, Mapping):
        served = loaded.serve({key: tf.constant(value) for key, value in input_data.items()})
    else:
        served = loaded.serve(tf.constant(input_data))
    expected = to_numpy(flatten_outputs(model(input_data, training=False)))
    assert_close(to_numpy(flatten_outputs(served)), expected, "model.export", atol=1e-4)


def _functional_wrapper(layer: keras.layers.Layer, input_data: Any) -> keras.Model:
    """A functional model around `layer`, so that a layer can be saved as a `.keras` file."""

    def make_input(value: Any, name: str | None) -> keras.KerasTensor:
        array = np.asarray(value)
        return keras.Input(shape=array.shape[1:], dtype=str(array.dtype), name=name)

    if isinstance(input_data, Mapping):
        inputs = {key: make_input(value, key) for key, value in input_data.items()}
    else:
        inputs = make_input(input_data, None)
    return keras.Model(inputs, layer(inputs))


def check_keras_file_round_trip(
    model: keras.layers.Layer, input_data: Any, tmp_path: str | os.PathLike
) -> None:
    """Saves `model` as a `.keras` file (config and weights), reloads it, compares outputs.

    A layer that is not a `keras.Model` is saved inside a functional model.
    """
    path = os.path.join(str(tmp_path), "model.keras")
    wrapper = model if isinstance(model, keras.Model) else _functional_wrapper(model, input_data)
    wrapper.save(path)
    reloaded = keras.saving.load_model(path)
    expected = to_numpy(flatten_outputs(wrapper(input_data, training=False)))
    actual = to_numpy(flatten_outputs(reloaded(input_data, training=False)))
    assert_close(actual, expected, ".keras")


def _sublayers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The model and every layer inside it, each once."""
    found: dict[int, keras.layers.Layer] = {}
    pending = [model]
    while pending:
        layer = pending.pop()
        if id(layer) in found:
            continue
        found[id(layer)] = layer
        pending.extend(layer._flatten_layers(include_self=False, recursive=False))  # noqa: SLF001
    return list(found.values())


def check_mixed_precision(
    make_model: Callable[[], keras.layers.Layer],
    input_data: Any,
    policy: str = "mixed_float16",
    float32_outputs: Collection[str] | Callable[[str], bool] = (),
) -> dict[str, np.ndarray]:
    """Builds a model under the `policy` dtype policy; asserts it computes as the policy says.

    Asserts that the model and every sublayer holding weights take the policy (compute in
    its compute dtype, e.g. float16), that every variable is in the policy's variable dtype
    (float32), that every floating output is in the compute dtype (except those allowed to
    be float32 by `float32_outputs`, e.g. logits a head casts to float32 on purpose) and
    finite. A model that builds its layers with a fixed dtype, or computes in float32
    whatever the policy, fails.

    Args:
      make_model: Returns a fresh model; it is called while the policy is set.
      input_data: A batch of inputs.
      policy: A mixed Keras dtype policy name, e.g. "mixed_float16" or "mixed_bfloat16".
      float32_outputs: Flattened output keys (see `flatten_outputs`), or a predicate on
        them, that must be float32 rather than the compute dtype.

    Returns:
      The flattened outputs (NumPy).
    """
    expected_policy = keras.DTypePolicy(policy)
    compute_dtype = expected_policy.compute_dtype
    variable_dtype = expected_policy.variable_dtype
    assert compute_dtype != variable_dtype, f"{policy!r} is not a mixed precision policy"
    is_float32_output = (
        float32_outputs if callable(float32_outputs) else lambda key: key in float32_outputs
    )

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = make_model()
        raw_outputs = flatten_outputs(model(input_data, training=False))
    finally:
        keras.config.set_dtype_policy(previous)

    ignoring = [
        f"{layer.name} ({layer.dtype_policy.name})"
        for layer in _sublayers(model)
        if (layer is model or layer.weights) and layer.compute_dtype != compute_dtype
    ]
    assert not ignoring, (
        f"{policy}: these layers ignore the policy and do not compute in {compute_dtype}: "
        f"{ignoring}"
    )
    wrong_variables = sorted({v.path for v in model.weights if v.dtype != variable_dtype})
    assert not wrong_variables, (
        f"{policy}: variables not in {variable_dtype}: {wrong_variables[:10]}"
    )
    outputs = to_numpy(raw_outputs)
    for key, value in outputs.items():
        if not np.issubdtype(value.dtype, np.floating) and value.dtype.name != "bfloat16":
            continue  # Integer outputs (e.g. predicted ids) have no compute dtype.
        want = "float32" if is_float32_output(key) else compute_dtype
        got = tf.as_dtype(raw_outputs[key].dtype).name
        assert got == want, f"{policy}: output {key!r} is {got}, expected {want}"
        assert np.all(np.isfinite(value.astype(np.float32))), f"{policy}: {key!r} is not finite"
    return outputs


def run_model_test(
    make_model: Callable[[], keras.layers.Layer],
    input_data: Any,
    expected_output_shapes: Any,
    tmp_path: str | os.PathLike,
    run_training: bool = True,
    run_saving: bool = True,
    run_mixed_precision: bool = True,
    no_gradient: Sequence[str] = (),
    mixed_precision_policy: str = "mixed_float16",
    float32_outputs: Collection[str] | Callable[[str], bool] = (),
    use_keras_export: bool = False,
) -> keras.layers.Layer:
    """Runs every shared check (see the module docstring); returns the model.

    Args:
      make_model: Returns a fresh model (keep the sizes tiny); it is called again for the
        mixed-precision check.
      input_data: A batch of inputs: an array, or a dict of arrays.
      expected_output_shapes: The output shapes, batch dimension included, structured like
        the outputs.
      tmp_path: A scratch directory for the saved files.
      run_training, run_saving, run_mixed_precision: Turn single checks off.
      no_gradient: Variable-path parts that legitimately get no gradient (see
        `check_train_step`).
      mixed_precision_policy: The policy `check_mixed_precision` uses.
      float32_outputs: Outputs that stay float32 under mixed precision (see
        `check_mixed_precision`).
      use_keras_export: Export with `model.export` (`check_export_round_trip`) instead of a
        `tf.Module` signature (`check_saved_model_round_trip`).
    """
    model = make_model()
    check_output_shapes(model(input_data, training=False), expected_output_shapes)
    rebuilt = check_config_round_trip(model, input_data, expected_output_shapes)
    check_checkpoint_round_trip(model, rebuilt, input_data, tmp_path)
    if run_saving:
        if use_keras_export:
            check_export_round_trip(model, input_data, tmp_path)
        else:
            check_saved_model_round_trip(model, input_data, tmp_path)
        check_keras_file_round_trip(model, input_data, tmp_path)
    if run_training:
        check_train_step(model, input_data, no_gradient=no_gradient)
    if run_mixed_precision:
        check_mixed_precision(
            make_model, input_data, policy=mixed_precision_policy, float32_outputs=float32_outputs
        )
    return model
