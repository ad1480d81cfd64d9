"""Shared checks for vision models, for garden-vision's tests and for research packages.

`run_backbone_test` puts a backbone through what a user does with it: build it, run it,
check its multi-level outputs against the shapes expected and against `output_specs`,
rebuild it from its config, save it with `tf.train.Checkpoint` (as training does) and
restore it into the rebuilt copy, train it one step (every trainable variable must get a
gradient), save and reload it as a `.keras` file, export it as a SavedModel and serve it,
and run it under mixed precision. A complete backbone test is then a few lines:

    def test_resnet18(tmp_path):
        run_backbone_test(
            ResNet,
            init_kwargs={"model_id": 18, "input_specs": keras.layers.InputSpec(
                shape=[None, 64, 64, 3])},
            input_data=np.random.rand(2, 64, 64, 3).astype("float32"),
            expected_output_shapes={"2": (2, 16, 16, 64), ..., "5": (2, 2, 2, 512)},
            tmp_path=tmp_path,
        )

The checks use plain `assert`s and NumPy, so they run under any test runner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def _as_dict(outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return dict(outputs)
    return {"output": outputs}


def _numpy(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {key: keras.ops.convert_to_numpy(value) for key, value in outputs.items()}


def _assert_close(actual: Mapping, expected: Mapping, what: str, atol: float) -> None:
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


def check_output_shapes(
    outputs: Mapping[str, Any], expected_output_shapes: Mapping[str, tuple[int | None, ...]]
) -> None:
    """Asserts that `outputs` has exactly the keys and shapes of `expected_output_shapes`."""
    shapes = {key: tuple(value.shape) for key, value in outputs.items()}
    expected = {key: tuple(shape) for key, shape in expected_output_shapes.items()}
    assert shapes == expected, f"output shapes {shapes} != expected {expected}"


def check_output_specs(model: keras.Model, outputs: Mapping[str, Any]) -> None:
    """Asserts that `model.output_specs` (if the model has them) agree with `outputs`."""
    specs = getattr(model, "output_specs", None)
    if specs is None:
        return
    assert sorted(specs) == sorted(outputs), f"output_specs keys {sorted(specs)}"
    for key, spec in specs.items():
        shape = tuple(spec.shape if hasattr(spec, "shape") else spec)
        actual = tuple(outputs[key].shape)
        assert len(shape) == len(actual), f"output_specs[{key!r}] = {shape}, output {actual}"
        for want, got in zip(shape[1:], actual[1:], strict=True):
            assert want is None or want == got, f"output_specs[{key!r}] = {shape}, output {actual}"


def check_train_step(model: keras.Model, input_data: Any) -> None:
    """Trains `model` one SGD step on the mean of all its outputs.

    Asserts that the loss is finite, that every trainable variable gets a gradient and that
    the step changes the weights.
    """
    variables = model.trainable_variables
    assert variables, "the model has no trainable variables"
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    with tf.GradientTape() as tape:
        outputs = _as_dict(model(input_data, training=True))
        loss = tf.add_n(
            [tf.reduce_mean(tf.cast(value, tf.float32) ** 2) for value in outputs.values()]
        )
        loss += tf.add_n(model.losses) if model.losses else 0.0
    gradients = tape.gradient(loss, variables)
    missing = [v.path for v, g in zip(variables, gradients, strict=True) if g is None]
    assert not missing, f"no gradient reaches {missing}"
    assert np.isfinite(float(loss)), f"training loss is {float(loss)}"
    keras.optimizers.SGD(learning_rate=0.1).apply_gradients(zip(gradients, variables, strict=True))
    changed = any(
        not np.array_equal(old, keras.ops.convert_to_numpy(v))
        for old, v in zip(before, variables, strict=True)
    )
    assert changed, "one training step changed no weight"


def check_saved_model_round_trip(
    model: keras.Model, input_data: Any, expected: Mapping[str, np.ndarray], tmp_path: str
) -> None:
    """Saves and reloads `model` as a `.keras` file and as a SavedModel; compares outputs."""
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    _assert_close(_numpy(_as_dict(reloaded(input_data, training=False))), expected, ".keras", 1e-5)

    export_dir = os.path.join(str(tmp_path), "saved_model")
    model.export(export_dir, format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(export_dir)  # Keep a reference: it owns the variables.
    served = loaded.serve(tf.constant(input_data))
    _assert_close(_numpy(_as_dict(served)), expected, "SavedModel", 1e-4)


def check_checkpoint_round_trip(model: keras.Model, rebuilt: keras.Model, tmp_path: str) -> None:
    """Saves `model` with `tf.train.Checkpoint` (as garden-core's trainer does) and restores
    it into `rebuilt`, a fresh copy; asserts that every weight comes back.

    This catches a Keras 3 pitfall: layers that a layer holds in a Python list attribute are
    invisible to `tf.train.Checkpoint`, so their weights would silently be left out of
    training checkpoints (`.keras` files still hold them). Keep sublayers in attributes,
    `keras.Sequential`s or functional models.
    """
    saved = tf.train.Checkpoint(model=model).save(os.path.join(str(tmp_path), "ckpt", "ckpt"))
    stored = {name for name, _ in tf.train.list_variables(saved)}
    num_stored = sum(1 for name in stored if name.startswith("model/"))
    assert num_stored == len(model.weights), (
        f"tf.train.Checkpoint holds {num_stored} of the model's {len(model.weights)} weights: "
        "some layer keeps sublayers in a list attribute"
    )
    tf.train.Checkpoint(model=rebuilt).read(saved).assert_existing_objects_matched()
    for restored, original in zip(rebuilt.weights, model.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored),
            keras.ops.convert_to_numpy(original),
            err_msg=f"checkpoint restore of {original.path}",
        )


def check_mixed_precision(
    model_class: type[keras.Model],
    init_kwargs: Mapping[str, Any],
    input_data: Any,
    policy: str = "mixed_bfloat16",
) -> None:
    """Builds the model under the `policy` dtype policy and checks its outputs are finite."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = model_class(**init_kwargs)
        outputs = _numpy(_as_dict(model(input_data, training=False)))
    finally:
        keras.config.set_dtype_policy(previous)
    for key, value in outputs.items():
        assert np.all(np.isfinite(value.astype(np.float32))), f"{policy}: {key!r} is not finite"


def classifier_parameter_count(backbone: keras.Model, num_classes: int = 1000) -> int:
    """Trainable parameters of `ClassificationModel(backbone, num_classes)`.

    This is the figure papers publish for ImageNet classifiers (backbone, pooling and the
    dense head; batch-normalization moving statistics are not counted).
    """
    from garden_vision.modeling.classification_model import ClassificationModel

    model = ClassificationModel(backbone, num_classes=num_classes)
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def run_backbone_test(
    model_class: type[keras.Model],
    init_kwargs: Mapping[str, Any],
    input_data: Any,
    expected_output_shapes: Mapping[str, tuple[int | None, ...]],
    tmp_path: str,
    run_training: bool = True,
    run_saving: bool = True,
    run_mixed_precision: bool = True,
) -> keras.Model:
    """Runs every shared backbone check (see the module docstring); returns the backbone.

    Args:
      model_class: The backbone class; `model_class(**init_kwargs)` builds it.
      init_kwargs: Its constructor arguments (keep the sizes tiny).
      input_data: A batch of images, a NumPy array.
      expected_output_shapes: Output key -> shape, batch dimension included.
      tmp_path: A scratch directory for the saved files.
      run_training, run_saving, run_mixed_precision: Turn single checks off.
    """
    model = model_class(**init_kwargs)
    outputs = _as_dict(model(input_data, training=False))
    check_output_shapes(outputs, expected_output_shapes)
    check_output_specs(model, outputs)
    expected = _numpy(outputs)

    # The config rebuilds the same architecture, and a training checkpoint restores it.
    rebuilt = model_class.from_config(model.get_config())
    check_output_shapes(_as_dict(rebuilt(input_data, training=False)), expected_output_shapes)
    assert rebuilt.count_params() == model.count_params(), "from_config changed the model size"
    check_checkpoint_round_trip(model, rebuilt, tmp_path)

    if run_saving:
        check_saved_model_round_trip(model, input_data, expected, tmp_path)
    if run_training:
        check_train_step(model, input_data)
    if run_mixed_precision:
        check_mixed_precision(model_class, init_kwargs, input_data)
    return model
