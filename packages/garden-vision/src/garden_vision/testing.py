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

The checks are `garden_core.testing.models`' (see there); this module adds what is
particular to vision: `output_specs` agree with the outputs, `.export` is Keras' own
(`model.export`), mixed precision is `mixed_bfloat16` (what Model Garden's vision
experiments use on TPUs), and `classifier_parameter_count` gives the figure papers publish.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from garden_core.testing import models as model_checks


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
    tmp_path: str | os.PathLike,
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
    model = model_checks.run_model_test(
        lambda: model_class(**init_kwargs),
        input_data,
        expected_output_shapes,
        tmp_path,
        run_training=run_training,
        run_saving=run_saving,
        run_mixed_precision=run_mixed_precision,
        mixed_precision_policy="mixed_bfloat16",
        use_keras_export=True,
    )
    check_output_specs(model, model_checks.flatten_outputs(model(input_data, training=False)))
    return model
