"""Exporting a trained model as a SavedModel with serving signatures.

An `ExportModule` wraps a model for serving: `serve(inputs)` runs pre-processing, the task's
`inference_step` and post-processing; `get_inference_signatures` turns it into concrete
functions, one per signature key. `export` restores a checkpoint and writes the SavedModel
into a temporary directory that is renamed into place only when it is complete, so a crash
never leaves a half-written export where a server would look for one.

    module = task.build_export_module(model)
    export(module, export_dir="/exports/mock", checkpoint_path=model_dir)
"""

from __future__ import annotations

import abc
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import tensorflow as tf

from garden_core.checkpoint_utils import resolve_checkpoint
from garden_core.config import ExperimentConfig
from garden_orbit.utils import atomic_write


class ExportModule(tf.Module, metaclass=abc.ABCMeta):
    """The base class of export modules (Model Garden's `export_base.ExportModule`)."""

    def __init__(
        self,
        params: ExperimentConfig,
        model: keras.Model,
        inference_step: Callable[..., Any] | None = None,
        preprocessor: Callable[..., Any] | None = None,
        postprocessor: Callable[..., Any] | None = None,
    ):
        """Initializes the module.

        Args:
          params: The experiment config.
          model: The model to serve.
          inference_step: `inference_step(inputs, model)` (usually the task's); by default
            `model(inputs, training=False)`.
          preprocessor: Applied to the serving inputs first (e.g. decoding images).
          postprocessor: Applied to the model outputs last (e.g. softmax, top classes).
        """
        super().__init__(name="export_module")
        self.params = params
        self.model = model
        self.inference_step = inference_step or (
            lambda inputs, model: model(inputs, training=False)
        )
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor

    def serve(self, inputs: Any) -> Mapping[str, tf.Tensor]:
        """Pre-processes `inputs`, runs inference and post-processes the outputs."""
        if self.preprocessor is not None:
            inputs = self.preprocessor(inputs)
        outputs = self.inference_step(inputs, self.model)
        if self.postprocessor is not None:
            outputs = self.postprocessor(outputs)
        if not isinstance(outputs, Mapping):
            outputs = {"outputs": outputs}
        return outputs

    @abc.abstractmethod
    def get_inference_signatures(
        self, function_keys: Mapping[str, str]
    ) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """Returns the concrete functions to export, keyed by signature name.

        Args:
          function_keys: Input type (e.g. `image_tensor`) -> signature key (e.g.
            `serving_default`).
        """


class KerasModelExportModule(ExportModule):
    """Serves a functional Keras model with its own named inputs.

    The single input type is `tensor`: the signature takes the model's inputs (by their
    `keras.Input` names, with their shapes and dtypes) and returns the served outputs.
    """

    INPUT_TYPES = ("tensor",)

    def _input_specs(self) -> dict[str, tf.TensorSpec]:
        inputs = getattr(self.model, "inputs", None)
        if not inputs:
            raise ValueError(
                f"{type(self.model).__name__} has no symbolic inputs, so its serving signature "
                "cannot be derived; give the task a build_export_module with explicit specs"
            )
        specs = {}
        for tensor in inputs:
            name = tensor.name.split(":")[0]
            specs[name] = tf.TensorSpec(tensor.shape, tf.as_dtype(tensor.dtype), name=name)
        return specs

    def get_inference_signatures(self, function_keys):
        unknown = set(function_keys) - set(self.INPUT_TYPES)
        if unknown:
            raise ValueError(
                f"input types {sorted(unknown)} are not offered; this module offers "
                + ", ".join(self.INPUT_TYPES)
            )
        specs = self._input_specs()
        single = len(specs) == 1

        @tf.function(input_signature=list(specs.values()))
        def serve_tensors(*tensors):
            inputs = tensors[0] if single else dict(zip(specs, tensors, strict=True))
            return self.serve(inputs)

        return {key: serve_tensors.get_concrete_function() for key in function_keys.values()}


def restore_for_export(model: keras.Model, checkpoint_path: str, ema: Any = None) -> str:
    """Restores the model (and EMA averages, which then replace the weights) for export.

    Args:
      model: The model, built.
      checkpoint_path: A checkpoint prefix or a directory (its latest checkpoint).
      ema: An `ExponentialMovingAverage` of the model's weights; when given, its averages
        are read from the checkpoint and become the exported weights.

    Returns:
      The checkpoint prefix read.

    Raises:
      FileNotFoundError: If `checkpoint_path` names no checkpoint.
    """
    resolved = resolve_checkpoint(checkpoint_path)
    if resolved is None:
        raise FileNotFoundError(
            f"--checkpoint_path {checkpoint_path}: no checkpoint there (expected a checkpoint "
            "prefix such as model_dir/ckpt-200, or a directory holding checkpoints)"
        )
    items = {"model": model}
    if ema is not None:
        items["ema"] = ema
    tf.train.Checkpoint(**items).read(resolved).expect_partial()
    if ema is not None:
        ema.assign_average_to_model()
    return resolved


# The temporary directory `export` writes a SavedModel into: `.NAME.tmp-PID-RANDOM`
# (`garden_orbit.utils.atomic_write.temporary_sibling`).
_TEMPORARY_EXPORT = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+")


def _process_is_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine; where that cannot be told, True."""
    if os.name != "posix":
        return True  # On Windows `os.kill(pid, 0)` would terminate the process.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # E.g. PermissionError: it exists but belongs to another user.
        return True
    return True


def _remove_stale_temporaries(parent: str, name: str, timestamped: bool) -> None:
    """Removes the temporary directories of earlier exports to `name` whose process died.

    `export` removes its temporary directory on any error Python sees, but a process killed
    outright (SIGKILL, out of memory, power loss) leaves it behind, and nothing would ever
    remove it. Those of live processes on this machine stay: they may be exports under way.
    """
    for entry in os.listdir(parent):
        match = _TEMPORARY_EXPORT.fullmatch(entry)
        if match is None:
            continue
        same_target = match["name"] == name or (timestamped and match["name"].isdigit())
        if same_target and not _process_is_alive(int(match["pid"])):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def export(
    export_module: ExportModule,
    export_dir: str,
    function_keys: Mapping[str, str] | None = None,
    timestamped: bool = False,
) -> str:
    """Writes `export_module` as a SavedModel; returns the directory written.

    The SavedModel is written to a temporary sibling directory and renamed to its final
    name only when complete. An existing export is never overwritten. Temporary directories
    that killed exports to the same destination left behind are removed.

    Args:
      export_module: The module to export (its model already restored).
      export_dir: The SavedModel directory; with `timestamped`, the parent of a new
        directory named by the current Unix time.
      function_keys: Input type -> signature key; by default the module's first input type
        as `serving_default`.
      timestamped: Write into a new `export_dir/<timestamp>` directory.

    Raises:
      FileExistsError: If the destination already exists.
    """
    if function_keys is None:
        input_types = getattr(export_module, "INPUT_TYPES", ("tensor",))
        function_keys = {input_types[0]: "serving_default"}
    destination = os.path.join(export_dir, str(int(time.time()))) if timestamped else export_dir
    destination = destination.rstrip("/") or destination
    if tf.io.gfile.exists(destination):
        raise FileExistsError(
            f"--export_dir {destination} already exists; choose a new directory (exports are "
            "never overwritten)"
        )
    parent = os.path.dirname(os.path.abspath(destination))
    tf.io.gfile.makedirs(parent)
    _remove_stale_temporaries(parent, os.path.basename(destination), timestamped)
    signatures = export_module.get_inference_signatures(function_keys)
    with atomic_write.atomic_directory(destination) as temporary:
        tf.saved_model.save(export_module, temporary, signatures=signatures)
    return destination
