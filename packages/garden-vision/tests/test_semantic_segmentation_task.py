"""`SemanticSegmentationTask` end to end through the CLI: a DeepLabV3+ trains and reports
mean IoU, evaluation at the original image size agrees with NumPy, the export serves logits
and labels from images, bytes and tf.Examples like the checkpoint's model, `garden-segment`
draws the label map, and a MobileNet DeepLabV3 converts to TensorFlow Lite.

The data are tiny TFRecords in Model Garden's segmentation layout written by the tests
(`segmentation_data`: coloured rectangles on dark noise, one colour per class).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from segmentation_data import (
    iou_per_class,
    segmentation_example,
    segmentation_samples,
    write_segmentation_tfrecords,
)

from garden_core import cli, experiment_factory, task_factory
from garden_core.config import ConfigError
from garden_vision.ops import preprocess_ops

SIZE = 64
NUM_CLASSES = 4  # Background and three classes.


def tiny_overrides(train: str, validation: str, steps: int = 60) -> dict:
    data = {"global_batch_size": 8, "output_size": [SIZE, SIZE]}
    return {
        "task": {
            "model": {
                "num_classes": NUM_CLASSES,
                "input_size": [SIZE, SIZE, 3],
                "min_level": 2,
                "max_level": 5,
                "backbone": {
                    "type": "resnet",
                    "resnet": {"model_id": 10, "depth_multiplier": 0.25},
                },
                "decoder": {
                    "type": "aspp",
                    "aspp": {"level": 4, "dilation_rates": [2, 4], "num_filters": 16},
                },
                "head": {
                    "level": 4,
                    "num_convs": 1,
                    "num_filters": 16,
                    "feature_fusion": "deeplabv3plus",
                    "low_level": 2,
                    "low_level_num_filters": 8,
                },
                "norm_activation": {"norm_momentum": 0.9, "use_sync_bn": False},
            },
            "train_data": {
                **data,
                "input_path": train,
                "is_training": True,
                "shuffle_buffer_size": 64,
                "seed": 1,
                "aug_scale_min": 0.8,
                "aug_scale_max": 1.2,
            },
            "validation_data": {
                **data,
                "input_path": validation,
                "is_training": False,
                "drop_remainder": False,
                "resize_eval_groundtruth": True,
            },
            "losses": {"l2_weight_decay": 1e-4},
            "init_checkpoint": "",
        },
        "trainer": {
            "train_steps": steps,
            "steps_per_loop": steps // 2,
            "summary_interval": steps // 2,
            "checkpoint_interval": steps,
            "validation_interval": steps,
            "validation_steps": -1,
            "optimizer_config": {
                "optimizer": {"type": "adam"},
                "learning_rate": {"type": "constant", "constant": {"learning_rate": 0.01}},
            },
        },
        "runtime": {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1},
    }


def experiment(overrides: dict, name: str = "seg_deeplabv3plus_pascal"):
    params = experiment_factory.get_experiment_config(name)
    params.override(overrides)
    params.validate()
    return params


def _run(params, root, name="seg_deeplabv3plus_pascal", mode="train_and_eval") -> list[dict]:
    config_file = root / "params.yaml"
    config_file.write_text(params.as_yaml())
    model_dir = str(root / "model")
    status = cli.main(
        ["train", "--experiment", name, "--config_file", str(config_file)]
        + ["--mode", mode, "--model_dir", model_dir]
    )
    assert status == 0
    with open(f"{model_dir}/metrics.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("segmentation")
    kwargs = {"height": SIZE, "width": SIZE, "num_classes": NUM_CLASSES}
    train = write_segmentation_tfrecords(
        root / "train.tfrecord", segmentation_samples(64, seed=0, **kwargs)
    )
    validation_samples = segmentation_samples(12, seed=1, **kwargs)
    validation = write_segmentation_tfrecords(root / "valid.tfrecord", validation_samples)
    return train, validation, validation_samples


@pytest.fixture(scope="module")
def trained(data_files, tmp_path_factory):
    """DeepLabV3+ trained and evaluated by `garden train`: (params, root, metric records)."""
    params = experiment(tiny_overrides(*data_files[:2]))
    root = tmp_path_factory.mktemp("run")
    return params, root, _run(params, root)


def _checkpoint_model(params, model_dir: str):
    model = task_factory.get_task(params.task).build_model()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(model_dir)).expect_partial()
    return model


def _predict(model, images: np.ndarray) -> np.ndarray:
    """The model's labels at the input size for uint8 images of that size."""
    logits = model(preprocess_ops.normalize_image(tf.cast(images, tf.float32)), training=False)
    logits = tf.image.resize(logits["logits"], images.shape[1:3], method="bilinear")
    return tf.argmax(logits, axis=-1).numpy()


def test_deeplabv3plus_trains_and_reports_mean_iou_like_numpy(trained, data_files):
    params, root, records = trained
    train = [r["metrics"] for r in records if r["mode"] == "train"]
    assert len(train) == 2
    assert train[-1]["training_loss"] < train[0]["training_loss"]
    assert 0.0 <= train[-1]["mean_iou"] <= 1.0
    evaluation = [r["metrics"] for r in records if r["mode"] == "eval"][-1]
    assert {f"iou/{i}" for i in range(NUM_CLASSES)} | {"mean_iou", "validation_loss"} <= set(
        evaluation
    )
    # The reported IoUs are those of the checkpoint's predictions, computed with NumPy.
    samples = data_files[2]
    model = _checkpoint_model(params, str(root / "model"))
    predictions = _predict(model, np.stack([image for image, _ in samples]))
    expected = iou_per_class([mask for _, mask in samples], list(predictions), NUM_CLASSES)
    actual = [evaluation[f"iou/{i}"] for i in range(NUM_CLASSES)]
    np.testing.assert_allclose(actual, expected, atol=2e-3)
    np.testing.assert_allclose(evaluation["mean_iou"], expected.mean(), atol=2e-3)
    assert evaluation["mean_iou"] > 0.3  # Learns the colours: background alone gives ~0.2.


def test_evaluation_at_the_original_image_size(trained, tmp_path):
    # Validation images of other sizes: with `resize_eval_groundtruth: false` the masks keep
    # their size (padded to groundtruth_padded_size) and the predictions are rescaled to each
    # image before scoring; the loss is not defined then and not reported.
    params, root, _ = trained
    samples = segmentation_samples(4, height=48, width=80, num_classes=NUM_CLASSES, seed=5)
    samples += segmentation_samples(4, height=72, width=40, num_classes=NUM_CLASSES, seed=6)
    validation = write_segmentation_tfrecords(tmp_path / "sizes.tfrecord", samples)
    params.override(
        {
            "task": {
                "validation_data": {
                    "input_path": validation,
                    "resize_eval_groundtruth": False,
                    "groundtruth_padded_size": [96, 96],
                },
            },
        }
    )
    params.validate()
    # `garden train --mode eval` evaluates the latest checkpoint of its model_dir.
    shutil.copytree(root / "model", tmp_path / "model")
    records = _run(params, tmp_path, mode="eval")
    evaluation = [r["metrics"] for r in records if r["mode"] == "eval"][-1]
    assert "validation_loss" not in evaluation
    model = _checkpoint_model(params, str(root / "model"))
    predictions = []
    for image, _ in samples:
        # Evaluation's preprocessing: aspect-preserving resize into 64x64, zero padding.
        normalized = preprocess_ops.normalize_image(tf.cast(image, tf.float32))
        resized, info = preprocess_ops.resize_and_crop_image(normalized, [SIZE, SIZE], [SIZE, SIZE])
        logits = model(resized[tf.newaxis], training=False)["logits"]
        logits = tf.image.resize(logits, [SIZE, SIZE], method="bilinear")
        scaled = np.round(np.array(image.shape[:2]) * info[2].numpy()).astype(int)
        window = tf.image.resize(logits[:, : scaled[0], : scaled[1]], image.shape[:2])
        predictions.append(tf.argmax(window[0], axis=-1).numpy())
    expected = iou_per_class([mask for _, mask in samples], predictions, NUM_CLASSES)
    actual = [evaluation[f"iou/{i}"] for i in range(NUM_CLASSES)]
    np.testing.assert_allclose(actual, expected, atol=0.02)


def test_bad_configs_name_the_field(data_files):
    overrides = tiny_overrides(*data_files[:2])
    overrides["task"]["model"]["head"]["low_level"] = 7
    params = experiment(overrides)
    task = task_factory.get_task(params.task)
    with pytest.raises(ConfigError, match="low_level"):
        task.build_model()
    overrides = tiny_overrides(*data_files[:2])
    overrides["task"]["model"]["input_size"] = [None, None, 3]
    overrides["task"]["train_data"]["output_size"] = []
    with pytest.raises(ConfigError, match="output_size"):
        task_factory.get_task(experiment(overrides).task)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    params, root, _ = trained
    export_dir = str(tmp_path_factory.mktemp("export") / "segmenter")
    status = cli.main(
        ["export", "--experiment", "seg_deeplabv3plus_pascal"]
        + ["--config_file", str(root / "params.yaml"), "--checkpoint_path", str(root / "model")]
        + ["--export_dir", export_dir, "--input_type", "image_tensor,image_bytes,tf_example"]
    )
    assert status == 0
    return params, str(root / "model"), export_dir


def test_export_serves_logits_and_labels_like_the_model(exported):
    params, model_dir, export_dir = exported
    samples = segmentation_samples(3, height=SIZE, width=SIZE, num_classes=NUM_CLASSES, seed=9)
    images = np.stack([image for image, _ in samples])
    signatures = tf.saved_model.load(export_dir).signatures
    assert set(signatures) == {"serving_default", "image_bytes", "tf_example"}
    from_tensors = signatures["serving_default"](tf.constant(images))
    from_bytes = signatures["image_bytes"](
        tf.constant([tf.io.encode_png(image).numpy() for image in images])
    )
    from_examples = signatures["tf_example"](
        tf.constant([segmentation_example(image, mask) for image, mask in samples])
    )
    assert set(from_tensors) == {"logits", "labels", "image_info"}
    assert from_tensors["logits"].shape == (3, SIZE, SIZE, NUM_CLASSES)
    assert from_tensors["labels"].shape == (3, SIZE, SIZE)
    assert from_tensors["labels"].dtype == tf.int32
    for outputs in (from_bytes, from_examples):
        np.testing.assert_allclose(outputs["logits"], from_tensors["logits"], atol=1e-4)
    model = _checkpoint_model(params, model_dir)
    np.testing.assert_array_equal(from_tensors["labels"], _predict(model, images))


def test_rescaled_export_returns_the_original_size(trained, tmp_path):
    params, root, _ = trained
    config_file = tmp_path / "params.yaml"
    params.override({"task": {"export_config": {"rescale_output": True}}})
    config_file.write_text(params.as_yaml())
    export_dir = str(tmp_path / "rescaled")
    status = cli.main(
        ["export", "--experiment", "seg_deeplabv3plus_pascal", "--config_file", str(config_file)]
        + ["--checkpoint_path", str(root / "model"), "--export_dir", export_dir]
    )
    assert status == 0
    ((image, _),) = segmentation_samples(1, height=40, width=88, num_classes=NUM_CLASSES, seed=3)
    outputs = tf.saved_model.load(export_dir).signatures["serving_default"](
        tf.constant(image[np.newaxis])
    )
    assert outputs["labels"].shape == (1, 40, 88)
    assert outputs["logits"].shape == (1, 40, 88, NUM_CLASSES)


def test_segment_command_draws_the_label_map(exported, tmp_path, capsys):
    _, _, export_dir = exported
    ((image, _),) = segmentation_samples(1, height=48, width=96, num_classes=NUM_CLASSES, seed=4)
    image_file = tmp_path / "scene.png"
    image_file.write_bytes(tf.io.encode_png(image).numpy())
    from garden_vision.tools import detect, segment

    status = segment.main(
        ["--saved_model_dir", export_dir, "--image", str(image_file)]
        + ["--output_dir", str(tmp_path / "drawn"), "--mask_dir", str(tmp_path / "labels")]
    )
    assert status == 0
    assert "0 background" in capsys.readouterr().out
    labels = tf.io.decode_png((tmp_path / "labels" / "scene.png").read_bytes()).numpy()[..., 0]
    assert labels.shape == (48, 96)
    function, kind = detect._signature(export_dir)
    _, expected = segment.segment(function, kind, image_file.read_bytes())
    np.testing.assert_array_equal(labels, expected)
    drawn = tf.io.decode_png((tmp_path / "drawn" / "scene.png").read_bytes()).numpy()
    # Exactly the non-background pixels are tinted.
    np.testing.assert_array_equal(np.any(drawn != image, axis=-1), labels > 0)
    assert segment.main(["--saved_model_dir", str(tmp_path), "--image", str(image_file)]) == 1
    assert "not a readable SavedModel" in capsys.readouterr().err


def test_mobilenet_deeplab_converts_to_tflite(tmp_path):
    from garden_vision.serving import tflite

    params = experiment_factory.get_experiment_config("mnv2_deeplabv3_pascal")
    params.override(
        {
            "task": {
                "model": {
                    "num_classes": NUM_CLASSES,
                    "input_size": [SIZE, SIZE, 3],
                    "backbone": {"mobilenet": {"filter_size_scale": 0.35}},
                    "decoder": {"aspp": {"num_filters": 16}},
                    "norm_activation": {"use_sync_bn": False},
                },
                "init_checkpoint": "",
            },
            "runtime": {"distribution_strategy": "one_device", "num_gpus": 0},
        }
    )
    params.validate()
    config_file = tmp_path / "params.yaml"
    config_file.write_text(params.as_yaml())
    model = task_factory.get_task(params.task).build_model()
    checkpoint = tf.train.Checkpoint(model=model).save(str(tmp_path / "model" / "ckpt"))
    export_dir = str(tmp_path / "export")
    status = cli.main(
        ["export", "--experiment", "mnv2_deeplabv3_pascal", "--config_file", str(config_file)]
        + ["--checkpoint_path", checkpoint, "--export_dir", export_dir, "--input_type", "tflite"]
    )
    assert status == 0
    path = tflite.convert(export_dir, str(tmp_path / "deeplab.tflite"))
    image = np.random.default_rng(0).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
    runner = tf.lite.Interpreter(model_path=path).get_signature_runner("serving_default")
    outputs = runner(inputs=image)
    expected = model(preprocess_ops.normalize_image(image), training=False)["logits"]
    expected = tf.image.resize(expected, [SIZE, SIZE], method="bilinear").numpy()
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-3)
    np.testing.assert_array_equal(outputs["labels"], np.argmax(expected, axis=-1))
