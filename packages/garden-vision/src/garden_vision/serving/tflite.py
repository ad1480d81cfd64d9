"""Converts an exported classifier or detector to TensorFlow Lite.

Export the model with the `tflite` input type (a fixed `[1, height, width, 3]` float input
with normalization inside), then convert it (for a detector, export with
`task.model.detection_generator.nms_version=tflite` so that non-maximum suppression becomes
TFLite's built-in `TFLite_Detection_PostProcess` op):

    garden export --experiment mobilenet_imagenet --checkpoint_path MODEL_DIR \\
        --export_dir /tmp/mobilenet --input_type tflite
    python -m garden_vision.serving.tflite --saved_model_dir /tmp/mobilenet \\
        --output /tmp/mobilenet.tflite [--quantization dynamic_range]

The `.tflite` file is written under a temporary name and renamed into place when complete, so
a crash never leaves a truncated model where a device would look for one.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from garden_orbit.utils import atomic_write

QUANTIZATIONS = ("none", "dynamic_range", "float16")


def _frozen_signature(signature):
    """The signature with its variables made constants, keeping its input and output names.

    TensorFlow 2.21's converter reads the variables of Keras 3 models from a SavedModel as
    uninitialized (the `.tflite` file then computes NaNs), so they are frozen here first.
    """
    frozen = convert_variables_to_constants_v2(signature)
    # The frozen function returns the outputs as a flat list in `tf.nest` order.
    output_names = tf.nest.flatten(
        {name: name for name in signature.structured_outputs}, expand_composites=False
    )
    (input_name, input_spec), *others = signature.structured_input_signature[1].items()
    if others:
        raise ValueError("only single-input signatures convert to TensorFlow Lite here")

    @tf.function(input_signature=[tf.TensorSpec(input_spec.shape, input_spec.dtype, input_name)])
    def named(inputs):
        return dict(zip(output_names, frozen(inputs), strict=True))

    return named.get_concrete_function()


def _uses_tflite_custom_ops(signature) -> bool:
    """Whether the signature calls a function TFLite replaces by one of its own ops.

    Such functions carry `experimental_implements` (for example the detection
    post-processing, `TFLite_Detection_PostProcess`). Freezing the variables inlines them,
    after which the converter would convert their TensorFlow bodies instead.
    """
    library = signature.graph.as_graph_def().library.function
    return any("_implements" in function.attr for function in library)


def convert(
    saved_model_dir: str,
    output_path: str,
    signature_key: str = "serving_default",
    quantization: str = "none",
) -> str:
    """Converts one signature of a SavedModel to a `.tflite` file; returns its path.

    Args:
      saved_model_dir: A SavedModel exported with the `tflite` input type.
      output_path: Where to write the `.tflite` file (it must not exist).
      signature_key: The signature to convert.
      quantization: `none`, `dynamic_range` (int8 weights) or `float16` (float16 weights).

    Raises:
      ValueError: For an unknown quantization or signature, or an existing output.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"--quantization {quantization!r}: expected one of {', '.join(QUANTIZATIONS)}"
        )
    if os.path.exists(output_path):
        raise ValueError(f"--output {output_path} already exists; choose a new path")
    loaded = tf.saved_model.load(saved_model_dir)
    if signature_key not in loaded.signatures:
        raise ValueError(
            f"{saved_model_dir} has no signature {signature_key!r}; it has "
            + ", ".join(sorted(loaded.signatures))
        )
    signature = loaded.signatures[signature_key]
    if _uses_tflite_custom_ops(signature):
        # Converted as saved, so the op's function survives; TFLite's own op resolver has it.
        converter = tf.lite.TFLiteConverter.from_concrete_functions([signature], loaded)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    else:
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [_frozen_signature(signature)], loaded
        )
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    flatbuffer = converter.convert()
    atomic_write.write_bytes(output_path, flatbuffer)
    return output_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m garden_vision.serving.tflite",
        description="Convert a SavedModel exported with --input_type tflite to TensorFlow Lite.",
    )
    parser.add_argument("--saved_model_dir", required=True)
    parser.add_argument("--output", required=True, help="the .tflite file to write")
    parser.add_argument("--signature_key", default="serving_default")
    parser.add_argument("--quantization", default="none", choices=QUANTIZATIONS)
    args = parser.parse_args(argv)
    try:
        path = convert(args.saved_model_dir, args.output, args.signature_key, args.quantization)
    except (ValueError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
