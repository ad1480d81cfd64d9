"""`ImageClassificationTask` end to end: training, evaluation, losses, metrics, initialization
and export, on a tiny colour dataset the tests write as TFRecords."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from colour_data import IMAGE_SIZE, NUM_CLASSES, colour_images, example

from garden_core import cli, experiment_factory, registry, task_factory, train_lib
from garden_core.config import ConfigError

TINY_BACKBONE = {"type": "resnet", "resnet": {"model_id": 10, "depth_multiplier": 0.25}}


def tiny_overrides(train: str, validation: str, **task) -> dict:
    data = {"decode_jpeg_only": False, "aug_crop": False, "global_batch_size": 16}
    overrides = {
        "task": {
            "model": {
                "num_classes": NUM_CLASSES,
                "input_size": [IMAGE_SIZE, IMAGE_SIZE, 3],
                "backbone": TINY_BACKBONE,
                # Batch-norm statistics that settle within a 100-step run.
                "norm_activation": {"norm_momentum": 0.9},
            },
            "train_data": {**data, "input_path": train, "shuffle_buffer_size": 64, "seed": 1},
            "validation_data": {**data, "input_path": validation, "drop_remainder": False},
            "losses": {"l2_weight_decay": 1e-4, "label_smoothing": 0.1},
            "evaluation": {"top_k": 2},
        },
        "trainer": {
            "train_steps": 100,
            "steps_per_loop": 25,
            "summary_interval": 25,
            "checkpoint_interval": 25,
            "validation_interval": 100,
            "optimizer_config": {
                "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                "learning_rate": {"type": "constant", "constant": {"learning_rate": 0.01}},
            },
        },
        "runtime": {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1},
    }
    for key, value in task.items():
        overrides["task"][key] = {**overrides["task"].get(key, {}), **value}
    return overrides


def experiment(overrides: dict):
    params = experiment_factory.get_experiment_config("image_classification")
    params.override(overrides)
    params.validate()
    return params


@pytest.fixture(scope="module")
def trained(colour_tfrecords, tmp_path_factory):
    """A tiny ResNet trained with `run_experiment` (train_and_eval): (params, model_dir, logs)."""
    params = experiment(tiny_overrides(*colour_tfrecords))
    model_dir = str(tmp_path_factory.mktemp("run"))
    task = task_factory.get_task(params.task, logging_dir=model_dir)
    _, logs = train_lib.run_experiment(
        tf.distribute.get_strategy(), task, "train_and_eval", params, model_dir
    )
    return params, model_dir, logs


def test_training_learns_the_classes_and_reports_top_k(trained):
    _, model_dir, logs = trained
    assert logs["accuracy"] > 0.9
    assert logs["top_2_accuracy"] >= logs["accuracy"]
    with open(f"{model_dir}/metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    train = [r for r in records if r["mode"] == "train"]
    assert train[-1]["metrics"]["training_loss"] < train[0]["metrics"]["training_loss"]
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-100")


def test_export_serves_tensors_bytes_and_examples_like_evaluation(trained, tmp_path, capsys):
    params, model_dir, _ = trained
    config_file = tmp_path / "params.yaml"
    config_file.write_text(params.as_yaml())
    export_dir = tmp_path / "export"
    status = cli.main(
        ["export", "--experiment", "image_classification", "--config_file", str(config_file)]
        + ["--checkpoint_path", model_dir, "--export_dir", str(export_dir)]
        + ["--input_type", "image_tensor,image_bytes,tf_example"]
    )
    assert status == 0, capsys.readouterr().err
    images, labels = colour_images(8, seed=5)
    encoded = [tf.io.encode_png(image).numpy() for image in images]

    loaded = tf.saved_model.load(str(export_dir))
    assert set(loaded.signatures) == {"serving_default", "image_bytes", "tf_example"}
    from_tensors = loaded.signatures["serving_default"](tf.constant(images))
    from_bytes = loaded.signatures["image_bytes"](tf.constant(encoded))
    from_examples = loaded.signatures["tf_example"](
        tf.constant([example(e, label) for e, label in zip(encoded, labels, strict=True)])
    )
    for outputs in (from_bytes, from_examples):
        np.testing.assert_allclose(outputs["probs"], from_tensors["probs"], atol=1e-5)
    np.testing.assert_allclose(np.sum(from_tensors["probs"], axis=-1), 1.0, atol=1e-5)
    assert from_tensors["logits"].dtype == tf.float32
    assert from_tensors["classes"].dtype == tf.int32

    # The served predictions are the checkpoint's evaluation predictions.
    task = task_factory.get_task(params.task)
    model = task.build_model()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(model_dir)).expect_partial()
    from garden_vision.dataloaders.classification_input import Parser

    evaluate = Parser([IMAGE_SIZE, IMAGE_SIZE], NUM_CLASSES, params.task.validation_data)
    batch = tf.stack([evaluate({"image": e, "label": 0})[0] for e in encoded])
    np.testing.assert_allclose(
        tf.nn.softmax(model(batch, training=False)), from_tensors["probs"], atol=1e-5
    )
    assert np.mean(from_tensors["classes"].numpy() == labels) > 0.8


def test_losses_follow_their_formulas(colour_tfrecords):
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], np.float32)
    labels = np.array([0, 2])
    log_probs = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    one_hot = np.eye(3)[labels]

    def loss(**losses):
        params = experiment(tiny_overrides(*colour_tfrecords, losses=losses))
        task = task_factory.get_task(params.task)
        return float(task.build_losses(tf.constant(labels), tf.constant(logits)))

    smoothed = one_hot * 0.8 + 0.2 / 3
    assert loss(label_smoothing=0.2) == pytest.approx(-np.mean(np.sum(smoothed * log_probs, 1)))
    sparse = -np.mean(log_probs[[0, 1], labels])
    assert loss(one_hot=False, label_smoothing=0.0) == pytest.approx(sparse, rel=1e-5)
    assert loss(label_smoothing=0.0, loss_weight=2.0) == pytest.approx(2 * sparse, rel=1e-5)
    sigmoid = 1 / (1 + np.exp(-logits))
    bce = -np.mean(one_hot * np.log(sigmoid) + (1 - one_hot) * np.log(1 - sigmoid))
    assert loss(use_binary_cross_entropy=True, label_smoothing=0.0) == pytest.approx(bce, rel=1e-5)

    params = experiment(tiny_overrides(*colour_tfrecords, losses={"soft_labels": True}))
    task = task_factory.get_task(params.task)
    soft = np.array([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]], np.float32)
    expected = -np.mean(np.sum(soft * log_probs, 1))
    assert float(task.build_losses(tf.constant(soft), tf.constant(logits))) == pytest.approx(
        expected, rel=1e-5
    )
    # DeiT's two heads: the mean of both losses.
    outputs = {"logits": tf.constant(logits), "distill_logits": tf.constant(logits[::-1].copy())}
    both = float(task.build_losses(tf.constant(soft), outputs))
    other = -np.mean(np.sum(soft * log_probs[::-1], 1))
    assert both == pytest.approx((expected + other) / 2, rel=1e-5)


def test_metrics_accuracy_top_k_precision_and_recall(colour_tfrecords):
    params = experiment(
        tiny_overrides(
            *colour_tfrecords,
            evaluation={
                "precision_and_recall_thresholds": [0.5],
                "report_per_class_precision_and_recall": True,
            },
        )
    )
    task = task_factory.get_task(params.task)
    metrics = task.build_metrics(training=False)
    names = [m.name for m in metrics]
    assert names[:4] == ["accuracy", "top_2_accuracy", "precision_at_0.5", "recall_at_0.5"]
    assert "precision_at_0.5/2" in names
    assert "recall_at_0.5/0" in names
    logits = tf.constant([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 4.0, 5.0]])
    task.process_metrics(metrics, tf.constant([0, 2, 1]), logits)
    results = {m.name: float(m.result()) for m in metrics}
    assert results["accuracy"] == pytest.approx(1 / 3)
    assert results["top_2_accuracy"] == pytest.approx(1.0)
    assert results["precision_at_0.5"] == pytest.approx(1 / 3, abs=1e-6)
    assert results["recall_at_0.5/0"] == pytest.approx(1.0)


def test_backbone_only_initialization_and_frozen_backbone(trained, colour_tfrecords):
    _, model_dir, _ = trained
    overrides = tiny_overrides(*colour_tfrecords)
    overrides["task"]["model"]["num_classes"] = 5  # A new head: only the backbone fits.
    overrides["task"].update({"init_checkpoint": model_dir, "init_checkpoint_modules": "backbone"})
    task = task_factory.get_task(experiment(overrides).task)
    model = task.build_model()
    task.initialize(model)

    reference = task_factory.get_task(experiment(tiny_overrides(*colour_tfrecords)).task)
    trained_model = reference.build_model()
    checkpoint = tf.train.latest_checkpoint(model_dir)
    tf.train.Checkpoint(model=trained_model).read(checkpoint).expect_partial()
    for restored, expected in zip(
        model.backbone.weights, trained_model.backbone.weights, strict=True
    ):
        np.testing.assert_array_equal(restored.numpy(), expected.numpy())

    overrides["task"]["freeze_backbone"] = True
    frozen = task_factory.get_task(experiment(overrides).task).build_model()
    assert {v.path for v in frozen.trainable_variables} == {
        v.path for v in frozen.head.trainable_variables
    }
    assert {v.path.split("/")[-1] for v in frozen.trainable_variables} == {"kernel", "bias"}


@pytest.mark.parametrize(
    ("task_overrides", "message"),
    [
        ({"model": {"num_classes": 0}}, "`task.model.num_classes` is 0"),
        ({"model": {"input_size": [24, 24]}}, "`task.model.input_size` is [24, 24]"),
        ({"init_checkpoint_modules": "head"}, "expected all or backbone"),
    ],
)
def test_bad_task_configs_name_the_field(colour_tfrecords, task_overrides, message):
    overrides = tiny_overrides(*colour_tfrecords)
    for key, value in task_overrides.items():
        overrides["task"][key] = (
            {**overrides["task"][key], **value} if isinstance(value, dict) else value
        )
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        task_factory.get_task(experiment(overrides).task)


def test_an_unknown_backbone_lists_close_matches(colour_tfrecords):
    overrides = tiny_overrides(*colour_tfrecords)
    overrides["task"]["model"]["backbone"] = {"type": "resnets"}
    with pytest.raises(ConfigError, match="resnet"):
        experiment(overrides)


def _multilabel_tfrecords(path, num: int, seed: int) -> str:
    """Images with two dominant colours; their labels are those two colours."""
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(num):
            labels = sorted(rng.choice(NUM_CLASSES, size=2, replace=False).tolist())
            image = rng.integers(0, 90, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
            image[..., labels] += 150
            feature = {
                "image/encoded": tf.train.Feature(
                    bytes_list=tf.train.BytesList(
                        value=[tf.io.encode_png(image.astype(np.uint8)).numpy()]
                    )
                ),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return str(path)


def test_multilabel_classification_trains_and_evaluates_end_to_end(tmp_path):
    train = _multilabel_tfrecords(tmp_path / "train.tfrecord", 96, seed=3)
    validation = _multilabel_tfrecords(tmp_path / "valid.tfrecord", 32, seed=4)
    multilabel = {"is_multilabel": True}
    overrides = tiny_overrides(
        train,
        validation,
        train_data=multilabel,
        validation_data=multilabel,
        evaluation={"precision_and_recall_thresholds": [0.5]},
        losses={"label_smoothing": 0.0},
    )
    overrides["trainer"].update(
        {
            "train_steps": 40,
            "steps_per_loop": 20,
            "summary_interval": 20,
            "checkpoint_interval": 40,
            "validation_interval": 40,
        }
    )
    params = experiment(overrides)
    task = task_factory.get_task(params.task)
    images, labels = next(iter(task.build_inputs(params.task.validation_data)))
    assert labels.shape == (16, NUM_CLASSES)
    assert labels.dtype == tf.float32
    np.testing.assert_array_equal(np.sum(labels.numpy(), axis=1), 2.0)
    # The loss is the per-class sigmoid cross-entropy of the logits.
    model = task.build_model()
    logits = model(images, training=False).numpy().astype(np.float64)
    targets = labels.numpy()
    log_sigmoid = -np.logaddexp(0.0, -logits)
    log_one_minus = -np.logaddexp(0.0, logits)
    bce = -np.mean(targets * log_sigmoid + (1 - targets) * log_one_minus)
    assert float(task.build_losses(labels, model(images, training=False))) == pytest.approx(
        bce, rel=1e-4
    )

    model_dir = str(tmp_path / "run")
    _, logs = train_lib.run_experiment(
        tf.distribute.get_strategy(),
        task_factory.get_task(params.task, logging_dir=model_dir),
        "train_and_eval",
        params,
        model_dir,
    )
    names = ["globalPR-AUC", "meanPR-AUC", "precision_at_0.5", "recall_at_0.5"]
    assert set(names) <= set(logs)
    for name in names:
        assert 0.0 <= logs[name] <= 1.0, (name, logs[name])
    # Two of three classes are on: chance PR-AUC is about 2/3; the colours are learnable.
    assert logs["globalPR-AUC"] > 0.85, logs
    assert logs["meanPR-AUC"] > 0.85, logs
    with open(f"{model_dir}/metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    train_records = [r for r in records if r["mode"] == "train"]
    assert "globalPR-AUC" in train_records[-1]["metrics"]


def test_multilabel_with_output_softmax_is_refused(colour_tfrecords):
    multilabel = {"is_multilabel": True}
    overrides = tiny_overrides(
        *colour_tfrecords,
        model={"output_softmax": True},
        train_data=multilabel,
        validation_data=multilabel,
    )
    with pytest.raises(ConfigError, match="output_softmax.*sigmoid"):
        task_factory.get_task(experiment(overrides).task)


@pytest.mark.parametrize("losses", [{"label_smoothing": 0.1}, {"one_hot": False}])
def test_output_softmax_trains_on_the_same_cross_entropy_as_logits(colour_tfrecords, losses):
    images, labels = colour_images(4, seed=7)
    images = (images.astype(np.float32) - 128.0) / 64.0
    smoothing = losses.get("label_smoothing", 0.0)
    targets = np.eye(NUM_CLASSES)[labels] * (1 - smoothing) + smoothing / NUM_CLASSES
    values = {}
    weights = None
    for output_softmax in (False, True):
        params = experiment(
            tiny_overrides(
                *colour_tfrecords, model={"output_softmax": output_softmax}, losses=losses
            )
        )
        task = task_factory.get_task(params.task)
        model = task.build_model()
        if weights is None:
            weights = [w.numpy() for w in model.weights]
        else:
            for variable, value in zip(model.weights, weights, strict=True):
                variable.assign(value)
        outputs = model(images, training=False)
        loss = float(task.build_losses(tf.constant(labels), outputs))
        values[output_softmax] = (outputs.numpy().astype(np.float64), loss)
    logits, logits_loss = values[False]
    probabilities, probabilities_loss = values[True]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    # NumPy: the cross-entropy of the softmax of the logits.
    log_probs = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    expected = -np.mean(np.sum(targets * log_probs, axis=1))
    assert logits_loss == pytest.approx(expected, rel=1e-4)
    # With `output_softmax` the loss reads the probabilities the model emits: the same value,
    # where cross-entropy on them as if they were logits would differ.
    assert probabilities_loss == pytest.approx(expected, rel=1e-4)
    as_logits = probabilities - np.log(np.sum(np.exp(probabilities), axis=1, keepdims=True))
    assert abs(-np.mean(np.sum(targets * as_logits, axis=1)) - expected) > 1e-3


def test_experiment_yaml_round_trip_through_garden_show(capsys):
    for name in registry.experiments.names():
        if registry.experiments.entry(name).distribution != "garden-vision":
            continue
        params = experiment_factory.get_experiment_config(name)
        again = experiment_factory.get_experiment_config(name)
        again.override(yaml.safe_load(params.as_yaml()))
        assert again == params, name


@pytest.mark.parametrize(
    "name",
    [
        "resnet_imagenet",
        "resnet_rs_imagenet",
        "revnet_imagenet",
        "mobilenet_imagenet",
        "vit_imagenet_pretrain",
        "deit_imagenet_pretrain",
    ],
)
def test_imagenet_experiments_build_their_full_size_models(name):
    params = experiment_factory.get_experiment_config(name)
    model = task_factory.get_task(params.task).build_model()
    assert model.output_shape[-1] == 1001
    keras.backend.clear_session()


def test_the_shapes_experiment_reads_the_generated_dataset(tmp_path):
    from garden_vision.datasets import shapes

    tiny = dataclasses.replace(
        shapes.SINGLE, name="single_tiny", train_examples=64, validation_examples=32
    )
    shapes.GardenShapes(config=tiny, data_dir=str(tmp_path)).download_and_prepare()
    params = experiment_factory.get_experiment_config("shapes_classification")
    data = {"tfds_name": "garden_shapes/single_tiny", "tfds_data_dir": str(tmp_path)}
    params.override(
        {
            "task": {
                "model": {"input_size": [32, 32, 3]},  # The 64x64 images are resized.
                "train_data": {**data, "global_batch_size": 8},
                "validation_data": {**data, "global_batch_size": 8},
            }
        }
    )
    task = task_factory.get_task(params.task)
    assert params.task.model.num_classes == len(shapes.CLASS_NAMES)
    images, labels = next(iter(task.build_inputs(params.task.train_data)))
    assert images.shape == (8, 32, 32, 3)
    assert labels.dtype == tf.int32
    validation = task.build_inputs(params.task.validation_data)
    assert sum(int(labels.shape[0]) for _, labels in validation) == 32
    model = task.build_model()
    logs = task.validation_step((images, labels), model, task.build_metrics(training=False))
    assert np.isfinite(float(logs["loss"]))
