"""TensorFlow Lite conversion of an exported MobileNet classifier."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from garden_core import cli, experiment_factory, task_factory
from garden_vision.ops import preprocess_ops
from garden_vision.serving import tflite

SIZE = 32
OVERRIDES = {
    "task": {
        "model": {
            "num_classes": 3,
            "input_size": [SIZE, SIZE, 3],
            "backbone": {
                "type": "mobilenet",
                "mobilenet": {"model_id": "MobileNetV3Small", "filter_size_scale": 0.75},
            },
        }
    },
    "runtime": {"distribution_strategy": "one_device", "num_gpus": 0},
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A MobileNetV3-Small classifier checkpoint exported with the `tflite` input type."""
    root = tmp_path_factory.mktemp("tflite")
    params = experiment_factory.get_experiment_config("mobilenet_imagenet")
    params.override(OVERRIDES)
    config_file = root / "params.yaml"
    config_file.write_text(params.as_yaml())
    model = task_factory.get_task(params.task).build_model()
    checkpoint = tf.train.Checkpoint(model=model).save(str(root / "model" / "ckpt"))
    export_dir = root / "export"
    status = cli.main(
        ["export", "--experiment", "mobilenet_imagenet", "--config_file", str(config_file)]
        + ["--checkpoint_path", checkpoint, "--export_dir", str(export_dir)]
        + ["--input_type", "tflite"]
    )
    assert status == 0
    return model, str(export_dir), root


def _run_tflite(path: str, image: np.ndarray) -> dict[str, np.ndarray]:
    interpreter = tf.lite.Interpreter(model_path=path)
    runner = interpreter.get_signature_runner("serving_default")
    return runner(inputs=image)


def test_the_tflite_model_predicts_like_the_keras_model(exported):
    model, export_dir, root = exported
    path = tflite.convert(export_dir, str(root / "model.tflite"))
    image = np.random.default_rng(0).uniform(0, 255, size=(1, SIZE, SIZE, 3)).astype(np.float32)
    outputs = _run_tflite(path, image)
    expected = tf.nn.softmax(model(preprocess_ops.normalize_image(image), training=False))
    np.testing.assert_allclose(outputs["probs"], expected, atol=1e-4)
    assert int(outputs["classes"][0]) == int(np.argmax(expected))
    assert not list(root.glob("*.tmp-*"))


def test_dynamic_range_quantization_shrinks_the_model(exported):
    _, export_dir, root = exported
    full = tflite.convert(export_dir, str(root / "full.tflite"))
    small = tflite.convert(export_dir, str(root / "small.tflite"), quantization="dynamic_range")
    assert tf.io.gfile.stat(small).length < tf.io.gfile.stat(full).length
    image = np.full((1, SIZE, SIZE, 3), 128.0, np.float32)
    np.testing.assert_allclose(np.sum(_run_tflite(small, image)["probs"]), 1.0, atol=1e-3)


def test_bad_conversions_are_one_line_errors(exported, tmp_path, capsys):
    _, export_dir, root = exported
    existing = tmp_path / "exists.tflite"
    existing.write_bytes(b"")
    cases = [
        (["--output", str(existing)], "already exists"),
        (["--output", str(tmp_path / "a.tflite"), "--signature_key", "nope"], "no signature"),
    ]
    for extra, message in cases:
        assert tflite.main(["--saved_model_dir", export_dir, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert message in err[0]
