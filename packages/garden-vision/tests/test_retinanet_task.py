"""`RetinaNetTask` end to end through the CLI: train, evaluate with COCO metrics, export,
detect objects in an image file, convert to TensorFlow Lite with its detection
post-processing op; bad configs and bad data.

The data are tiny TFRecords in Model Garden's detection layout that the tests write
(`detection_data.box_images`: bright rectangles on dark noise, one colour per class).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import yaml
from detection_data import (
    box_images,
    detection_example,
    encode_image,
    serve_three_ways,
    write_detection_tfrecords,
)

from garden_core import cli, experiment_factory, task_factory
from garden_core.config import ConfigError

SIZE = 64
NUM_CLASSES = 4  # Background and three object classes.


def tiny_overrides(train: str, validation: str) -> dict:
    data = {"global_batch_size": 8, "dtype": "float32"}
    return {
        "task": {
            "model": {
                "num_classes": NUM_CLASSES,
                "input_size": [SIZE, SIZE, 3],
                "min_level": 3,
                "max_level": 5,
                "anchor": {"num_scales": 2, "aspect_ratios": [0.5, 1.0, 2.0], "anchor_size": 2.0},
                "backbone": {
                    "type": "resnet",
                    "resnet": {"model_id": 10, "depth_multiplier": 0.25},
                },
                "decoder": {"type": "fpn", "fpn": {"num_filters": 32}},
                "head": {"num_convs": 1, "num_filters": 32},
                "detection_generator": {
                    "nms_version": "batched",
                    "pre_nms_top_k": 200,
                    "pre_nms_score_threshold": 0.0,
                },
                "norm_activation": {"norm_momentum": 0.9, "use_sync_bn": False},
            },
            "train_data": {
                **data,
                "input_path": train,
                "is_training": True,
                "shuffle_buffer_size": 64,
                "seed": 1,
                "parser": {"aug_rand_hflip": True, "max_num_instances": 4},
            },
            "validation_data": {
                **data,
                "input_path": validation,
                "is_training": False,
                "drop_remainder": False,
                "parser": {"max_num_instances": 4},
            },
            "losses": {"l2_weight_decay": 1e-4},
        },
        "trainer": {
            "train_steps": 300,
            "steps_per_loop": 100,
            "summary_interval": 100,
            "checkpoint_interval": 100,
            "validation_interval": 300,
            "validation_steps": -1,
            "optimizer_config": {
                "optimizer": {"type": "adam"},
                "learning_rate": {"type": "constant", "constant": {"learning_rate": 0.003}},
            },
        },
        "runtime": {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1},
    }


def experiment(overrides: dict):
    params = experiment_factory.get_experiment_config("retinanet")
    params.override(overrides)
    params.validate()
    return params


def build_task(overrides: dict):
    return task_factory.get_task(experiment(overrides).task)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("boxes")
    kwargs = {"height": SIZE, "width": SIZE, "max_boxes": 2, "num_classes": NUM_CLASSES}
    train = write_detection_tfrecords(root / "train.tfrecord", box_images(96, seed=0, **kwargs))
    validation = write_detection_tfrecords(
        root / "valid.tfrecord", box_images(16, seed=1, **kwargs)
    )
    return train, validation


@pytest.fixture(scope="module")
def trained(data_files, tmp_path_factory):
    """`garden train --mode train_and_eval` on the tiny data: (params, model_dir, config)."""
    params = experiment(tiny_overrides(*data_files))
    root = tmp_path_factory.mktemp("run")
    config_file = root / "params.yaml"
    config_file.write_text(params.as_yaml())
    model_dir = str(root / "model")
    status = cli.main(
        ["train", "--experiment", "retinanet", "--config_file", str(config_file)]
        + ["--mode", "train_and_eval", "--model_dir", model_dir]
    )
    assert status == 0
    return params, model_dir, str(config_file)


def test_training_reports_losses_and_coco_metrics(trained):
    _, model_dir, _ = trained
    with open(f"{model_dir}/metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    train = [r["metrics"] for r in records if r["mode"] == "train"]
    assert len(train) == 3
    assert train[-1]["total_loss"] < train[0]["total_loss"]
    evaluation = [r["metrics"] for r in records if r["mode"] == "eval"][-1]
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "ARmax1", "ARmax10", "ARmax100"):
        assert name in evaluation
    # 300 steps find the bright boxes: far above the untrained model's AP50 (about 1e-4).
    assert evaluation["AP50"] > 0.1
    for name in ("total_loss", "cls_loss", "box_loss", "model_loss"):
        assert np.isfinite(evaluation[name])


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    params, model_dir, config_file = trained
    export_dir = str(tmp_path_factory.mktemp("export") / "detector")
    status = cli.main(
        ["export", "--experiment", "retinanet", "--config_file", config_file]
        + ["--checkpoint_path", model_dir, "--export_dir", export_dir]
        + ["--input_type", "image_tensor,image_bytes,tf_example"]
    )
    assert status == 0
    return params, model_dir, export_dir


def test_export_serves_images_bytes_and_examples_like_the_model(exported):
    params, model_dir, export_dir = exported
    samples = box_images(3, height=48, width=80, max_boxes=2, num_classes=NUM_CLASSES, seed=7)
    images = np.stack([s.image for s in samples])
    from_tensors, from_bytes, from_examples = serve_three_ways(export_dir, samples)
    assert set(from_tensors) == {
        "detection_boxes",
        "detection_scores",
        "detection_classes",
        "num_detections",
        "image_info",
    }
    for outputs in (from_bytes, from_examples):
        for key in ("detection_boxes", "detection_scores", "num_detections"):
            np.testing.assert_allclose(outputs[key], from_tensors[key], atol=1e-4)
    assert from_tensors["detection_classes"].dtype == tf.int32
    # A 48x80 image is scaled by 0.8 to fit 64x64 (aspect ratio kept) to 38x64 pixels; the
    # scales are those of the rounded size, as Model Garden records them.
    np.testing.assert_allclose(
        from_tensors["image_info"][0], [[48, 80], [64, 64], [38 / 48, 0.8], [0, 0]], atol=1e-5
    )

    # The served detections are the checkpoint's detections on the same preprocessed image.
    task = task_factory.get_task(params.task)
    model = task.build_model()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(model_dir)).expect_partial()
    from garden_vision.ops import preprocess_ops

    image = preprocess_ops.normalize_image(tf.cast(images[0], tf.float32))
    image, info = preprocess_ops.resize_and_crop_image(image, [SIZE, SIZE], [SIZE, SIZE])
    direct = model(image[tf.newaxis], image_shape=info[tf.newaxis, 1], training=False)
    count = int(direct["num_detections"][0])
    assert count == int(from_tensors["num_detections"][0])
    np.testing.assert_allclose(
        from_tensors["detection_boxes"][0, :count], direct["detection_boxes"][0, :count], atol=1e-3
    )


def test_detect_command_prints_boxes_and_writes_a_png(exported, tmp_path, capsys):
    _, _, export_dir = exported
    (sample,) = box_images(1, height=SIZE, width=SIZE, max_boxes=2, num_classes=4, seed=11)
    image_file = tmp_path / "scene.jpg"
    image_file.write_bytes(encode_image(sample.image, "jpeg"))
    labels = tmp_path / "labels.txt"
    labels.write_text("dim\nmedium\nbright\n")
    from garden_vision.tools import detect

    output_dir = tmp_path / "drawn"
    status = detect.main(
        ["--saved_model_dir", export_dir, "--image", str(image_file), "--min_score", "0"]
        + ["--output_dir", str(output_dir), "--label_file", str(labels)]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "detections with score >= 0" in out
    drawn = tf.io.decode_png((output_dir / "scene.png").read_bytes()).numpy()
    assert drawn.shape == (SIZE, SIZE, 3)
    # Some pixels now carry a box colour the dark-noise image did not have.
    assert np.any(np.abs(drawn.astype(int) - sample.image.astype(int)) > 60)

    status = detect.main(["--saved_model_dir", str(tmp_path), "--image", str(image_file)])
    assert status == 1
    assert "not a readable SavedModel" in capsys.readouterr().err


def test_tflite_export_with_the_tflite_nms_agrees_with_the_saved_model(trained, tmp_path):
    params, model_dir, config_file = trained
    export_dir = str(tmp_path / "tflite_export")
    status = cli.main(
        ["export", "--experiment", "retinanet", "--config_file", config_file]
        + ["--params_override", "task.model.detection_generator.nms_version=tflite"]
        + ["--checkpoint_path", model_dir, "--export_dir", export_dir, "--input_type", "tflite"]
    )
    assert status == 0
    from garden_vision.serving import tflite

    path = tflite.convert(export_dir, str(tmp_path / "detector.tflite"))
    with open(path, "rb") as f:
        assert b"TFLite_Detection_PostProcess" in f.read()

    (sample,) = box_images(1, height=SIZE, width=SIZE, max_boxes=2, num_classes=4, seed=3)
    pixels = sample.image.astype(np.float32)[np.newaxis]
    lite = tf.lite.Interpreter(model_path=path).get_signature_runner()(inputs=pixels)
    saved = tf.saved_model.load(export_dir).signatures["serving_default"](tf.constant(pixels))
    count = int(saved["num_detections"][0])
    assert count > 0
    assert int(lite["num_detections"][0]) == count
    for key, tolerance in (("detection_scores", 1e-4), ("detection_boxes", 1e-2)):
        np.testing.assert_allclose(lite[key][0, :count], saved[key][0, :count], atol=tolerance)
    np.testing.assert_array_equal(
        lite["detection_classes"][0, :count], saved["detection_classes"][0, :count]
    )


def test_backbone_and_decoder_initialization_from_a_run(trained, data_files):
    _, model_dir, _ = trained
    overrides = tiny_overrides(*data_files)
    overrides["task"]["init_checkpoint"] = model_dir
    overrides["task"]["init_checkpoint_modules"] = ["backbone", "decoder"]
    params = experiment(overrides)
    task = task_factory.get_task(params.task)
    model = task.build_model()
    head_before = [v.numpy().copy() for v in model.head.weights]
    task.initialize(model)
    reference = task_factory.get_task(params.task).build_model()
    tf.train.Checkpoint(model=reference).read(
        tf.train.latest_checkpoint(model_dir)
    ).expect_partial()
    for mine, theirs in zip(model.backbone.weights, reference.backbone.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    for mine, theirs in zip(model.decoder.weights, reference.decoder.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    for before, after in zip(head_before, model.head.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


@pytest.mark.parametrize(
    ("task_overrides", "message"),
    [
        ({"model": {"num_classes": 1}}, "num_classes"),
        ({"model": {"input_size": [48, 48, 3]}}, "multiples of 2\\*\\*max_level"),
        ({"init_checkpoint_modules": "head"}, "init_checkpoint_modules"),
    ],
)
def test_bad_task_configs_name_the_field(data_files, task_overrides, message):
    overrides = tiny_overrides(*data_files)
    for key, value in task_overrides.items():
        current = overrides["task"].get(key)
        overrides["task"][key] = {**current, **value} if isinstance(current, dict) else value
    with pytest.raises(ConfigError, match=message):
        build_task(overrides)


def test_a_class_id_beyond_num_classes_names_the_record(tmp_path, data_files):
    bad = tmp_path / "bad.tfrecord"
    with tf.io.TFRecordWriter(str(bad)) as writer:
        image = np.zeros([SIZE, SIZE, 3], np.uint8)
        writer.write(
            detection_example(image, np.array([[0.1, 0.1, 0.5, 0.5]]), [7], source_id="img-42")
        )
    params = experiment(tiny_overrides(str(bad), data_files[1]))
    task = task_factory.get_task(params.task)
    dataset = task.build_inputs(params.task.train_data)
    with pytest.raises(tf.errors.InvalidArgumentError, match="img-42"):
        next(iter(dataset))


def test_the_shapes_experiment_reads_the_generated_dataset(tmp_path):
    import dataclasses

    from garden_vision.datasets import shapes

    tiny = dataclasses.replace(
        shapes.MULTI, name="multi_tiny", train_examples=16, validation_examples=8
    )
    shapes.GardenShapes(config=tiny, data_dir=str(tmp_path)).download_and_prepare()
    params = experiment_factory.get_experiment_config("shapes_detection")
    data = {"tfds_name": "garden_shapes/multi_tiny", "tfds_data_dir": str(tmp_path)}
    params.override(
        {
            "task": {
                "train_data": {**data, "global_batch_size": 4},
                "validation_data": {**data, "global_batch_size": 4},
            }
        }
    )
    task = task_factory.get_task(params.task)
    assert params.task.model.num_classes == len(shapes.CLASS_NAMES) + 1
    images, labels = next(iter(task.build_inputs(params.task.validation_data)))
    assert images.shape == (4, 128, 128, 3)
    classes = labels["groundtruths"]["classes"].numpy()
    assert classes.max() <= len(shapes.CLASS_NAMES)
    assert classes[classes > 0].min() >= 1
    model = task.build_model()
    logs = task.validation_step((images, labels), model, task.build_metrics(training=False))
    assert np.isfinite(float(logs["loss"]))


def test_experiment_yaml_round_trip_through_garden_show(capsys):
    assert cli.main(["show", "shapes_detection"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["task"]["model"]["decoder"]["type"] == "fpn"
    assert shown["task"]["validation_data"]["tfds_name"] == "garden_shapes/multi"
