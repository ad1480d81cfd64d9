"""`run_experiment` on the built-in `mock` experiment: every mode, resume, best checkpoint,
EMA, mixed precision, loss blow-up recovery, `init_checkpoint` and the training-data position
of distributed data (`one_device`)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core import experiment_factory, registry, task_factory, train_lib
from garden_core.base_trainer import LossBlowupError
from garden_core.config import ConfigError, load_mapping_file, override_config
from garden_core.experiments.mock_task import MockTask
from garden_core.train_utils import create_trainer


def mock_params(overrides: str | None = None):
    params = experiment_factory.get_experiment_config("mock")
    override_config(params, [], overrides)
    return params


def run(params, model_dir, mode="train_and_eval", task=None):
    task = task or task_factory.get_task(params.task, logging_dir=str(model_dir))
    return train_lib.run_experiment(
        tf.distribute.get_strategy(), task, mode, params, str(model_dir), show_progress=False
    )


def run_with_trainer(params, task, model_dir):
    """`train_and_eval` with a trainer built here, so the test can look inside it."""
    with tf.distribute.get_strategy().scope():
        trainer = create_trainer(params, task, train=True, evaluate=True)
    model, logs = train_lib.run_experiment(
        tf.distribute.get_strategy(),
        task,
        "train_and_eval",
        params,
        str(model_dir),
        trainer=trainer,
        show_progress=False,
    )
    return trainer, model, logs


def summary_tags(directory) -> set[str]:
    tags = set()
    for path in tf.io.gfile.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_the_mock_experiment_is_registered_by_garden_core():
    assert registry.experiments.entry("mock").distribution == "garden-core"
    assert task_factory.get_task_class(mock_params().task) is MockTask


def test_train_and_eval_writes_params_checkpoints_and_summaries(tmp_path):
    params = mock_params()
    model, logs = run(params, tmp_path)
    assert logs["accuracy"] > 0.9
    assert logs["num_examples_evaluated"] == 256  # The whole validation set, once.
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-200")
    written = mock_params()
    written.override(load_mapping_file(str(tmp_path / "params.yaml")))
    assert written == params
    assert {"training_loss", "accuracy", "learning_rate"} <= summary_tags(tmp_path / "train")
    assert {"validation_loss", "accuracy"} <= summary_tags(tmp_path / "validation")
    info = json.loads((tmp_path / "best_ckpt" / "info.json").read_text())
    assert info["best_metric_name"] == "accuracy"
    assert tf.train.latest_checkpoint(str(tmp_path / "best_ckpt")).endswith(
        f"ckpt-{info['best_ckpt_global_step']}"
    )
    assert isinstance(model, keras.Model)


def test_training_resumes_from_the_latest_checkpoint(tmp_path):
    run(mock_params("trainer.train_steps=100"), tmp_path, mode="train")
    params = mock_params("trainer.train_steps=150")
    task = task_factory.get_task(params.task)
    model, _ = run(params, tmp_path, mode="train", task=task)
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["mode"] == "train"
    ]
    assert steps[-1] == 150
    assert 100 in steps
    assert steps.count(50) == 1  # Not restarted.
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == 150


@pytest.mark.parametrize("mode", ["eval", "continuous_eval"])
def test_evaluation_modes_read_the_trained_checkpoint(tmp_path, mode):
    _, trained_logs = run(mock_params(), tmp_path, mode="train_and_eval")
    _, logs = run(mock_params(), tmp_path, mode=mode)
    assert logs["accuracy"] == pytest.approx(trained_logs["accuracy"])
    assert logs["validation_loss"] == pytest.approx(trained_logs["validation_loss"], rel=1e-5)


def test_train_and_post_eval_evaluates_once_after_training(tmp_path):
    _, logs = run(mock_params("trainer.train_steps=50"), tmp_path, mode="train_and_post_eval")
    assert logs["num_examples_evaluated"] == 256
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["mode"] == "eval"] == [50]


def test_eval_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        run(mock_params(), tmp_path, mode="eval")


def test_bad_mode_and_missing_train_steps_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="mode 'fit' is not one of"):
        run(mock_params(), tmp_path, mode="fit")
    with pytest.raises(ConfigError, match="train_steps"):
        run(mock_params("trainer.train_steps=0"), tmp_path, mode="train")


def test_best_checkpoint_keeps_the_best_value_across_restarts(tmp_path):
    params = mock_params(
        "trainer.best_checkpoint_metric_comp=lower,"
        "trainer.best_checkpoint_eval_metric=validation_loss"
    )
    run(params, tmp_path)
    first = json.loads((tmp_path / "best_ckpt" / "info.json").read_text())
    assert first["best_value"] == pytest.approx(first["eval_logs"]["validation_loss"])
    bad = mock_params("trainer.best_checkpoint_eval_metric=f1")
    with pytest.raises(ConfigError, match="'f1', which the evaluation does not report"):
        run(bad, tmp_path / "other")


def test_ema_weights_are_used_for_evaluation_and_swapped_back(tmp_path):
    params = mock_params(
        "trainer.optimizer_config.ema.average_decay=0.9,trainer.train_steps=100,"
        "trainer.best_checkpoint_export_subdir=''"
    )
    task = task_factory.get_task(params.task)
    trainer, model, logs = run_with_trainer(params, task, tmp_path)
    raw = [w.numpy() for w in model.trainable_weights]
    averages = [v.numpy() for v in trainer.ema.averages]
    assert not all(np.allclose(r, a) for r, a in zip(raw, averages, strict=True))
    # Evaluating by hand with the averages reproduces the reported loss.
    features, labels = next(
        iter(task.build_inputs(params.task.validation_data).unbatch().batch(256))
    )
    for weight, average in zip(model.trainable_weights, averages, strict=True):
        weight.assign(average)
    loss = task.build_losses(labels, model(features, training=False))
    assert float(loss) == pytest.approx(logs["validation_loss"], rel=1e-4)


@pytest.mark.parametrize(("dtype", "compute"), [("float16", "float16"), ("bfloat16", "bfloat16")])
def test_mixed_precision_trains(tmp_path, dtype, compute):
    params = mock_params(f"runtime.mixed_precision_dtype={dtype},trainer.train_steps=150")
    task = task_factory.get_task(params.task)
    try:
        train_lib.distribute_utils.set_mixed_precision_policy(dtype)
        trainer, model, logs = run_with_trainer(params, task, tmp_path)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("hidden_0").compute_dtype == compute
    assert model.get_layer("hidden_0").kernel.dtype == "float32"
    is_scaled = isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == (dtype == "float16")
    assert logs["accuracy"] > 0.85


class FlakyMockTask(MockTask):
    """Returns a NaN training loss at step `nan_step` (once per process, or every time).

    The loss itself is poisoned, not the features: a fused MatMul+ReLU kernel may map NaN
    activations to zero, which would hide the blow-up.
    """

    nan_step = 60
    once = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.fired = tf.Variable(False, trainable=False)
        self.poison = tf.Variable(False, trainable=False)

    def build_losses(self, labels, model_outputs, aux_losses=None):
        loss = super().build_losses(labels, model_outputs, aux_losses)
        return tf.cond(self.poison, lambda: loss * np.nan, lambda: loss)

    def train_step(self, inputs, model, optimizer, metrics=None):
        self.steps.assign_add(1)
        blow_up = tf.logical_and(
            tf.equal(self.steps, self.nan_step),
            tf.logical_not(self.fired) if self.once else tf.constant(True),
        )
        self.poison.assign(blow_up)
        logs = super().train_step(inputs, model, optimizer, metrics)
        self.poison.assign(False)
        self.fired.assign(tf.logical_or(self.fired, blow_up))
        return logs


def test_a_nan_loss_without_recovery_is_an_error_naming_the_step(tmp_path):
    params = mock_params("trainer.steps_per_loop=20,trainer.summary_interval=20")
    task = FlakyMockTask(params.task)
    with pytest.raises(LossBlowupError, match=r"loss is nan in the loop of steps 41-60"):
        run(params, tmp_path, mode="train", task=task)
    # The NaN weights were never saved.
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") < 60


def test_a_nan_loss_is_recovered_from_the_last_checkpoint(tmp_path):
    params = mock_params(
        "trainer.steps_per_loop=20,trainer.summary_interval=20,trainer.checkpoint_interval=20,"
        "trainer.recovery_max_trials=1"
    )
    task = FlakyMockTask(params.task)
    model, logs = run(params, tmp_path, mode="train_and_eval", task=task)
    assert bool(task.fired.numpy())
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)
    assert logs["accuracy"] > 0.9


def test_a_loss_above_the_upper_bound_counts_as_a_blowup(tmp_path):
    params = mock_params(
        "trainer.loss_upper_bound=0.01,trainer.recovery_begin_steps=51,trainer.steps_per_loop=50"
    )
    with pytest.raises(
        LossBlowupError, match="exceeds loss_upper_bound 0.01 in the loop of steps 51-100"
    ):
        run(params, tmp_path, mode="train")


def test_init_checkpoint_initializes_a_fresh_run_only(tmp_path):
    source_model, _ = run(mock_params("trainer.train_steps=50"), tmp_path / "source", "train")
    expected = [w.numpy() for w in source_model.weights]
    for init in [str(tmp_path / "source"), tf.train.latest_checkpoint(str(tmp_path / "source"))]:
        params = mock_params(f"task.init_checkpoint='{init}'")
        model_dir = tmp_path / f"eval-{len(init)}"
        model, _ = run(params, model_dir, mode="eval")
        for weight, value in zip(model.weights, expected, strict=True):
            np.testing.assert_array_equal(weight.numpy(), value)
    with pytest.raises(FileNotFoundError, match="task.init_checkpoint: no checkpoint at"):
        run(mock_params(f"task.init_checkpoint='{tmp_path / 'nothing'}'"), tmp_path / "x", "train")


def test_python_and_while_loops_train_alike(tmp_path):
    # The default compiled loop (metric reset, steps and logs in one graph call) and the
    # Python loop around a compiled step must report and learn the same.
    results = {}
    for while_loop in ("true", "false"):
        params = mock_params(f"trainer.train_tf_while_loop={while_loop},runtime.seed=5")
        keras.utils.set_random_seed(5)
        model, logs = run(params, tmp_path / while_loop, mode="train_and_eval")
        records = [
            json.loads(line)
            for line in (tmp_path / while_loop / "metrics.jsonl").read_text().splitlines()
        ]
        train = [r["metrics"] for r in records if r["mode"] == "train"]
        results[while_loop] = (model.get_weights(), logs, train)
    (fused_weights, fused_logs, fused_train), (weights, logs, train) = results.values()
    for a, b in zip(fused_weights, weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert fused_logs["accuracy"] == pytest.approx(logs["accuracy"], abs=1e-6)
    assert [t["training_loss"] for t in fused_train] == pytest.approx(
        [t["training_loss"] for t in train], rel=1e-5
    )
    assert [t["learning_rate"] for t in fused_train] == [t["learning_rate"] for t in train]


# The training-data position under a distribution strategy (`one_device` runs in this
# process; the kill-and-resume tests run every strategy in fresh processes).


def one_device_trainer(params, task=None):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    task = task or task_factory.get_task(params.task)
    with strategy.scope():
        return create_trainer(params, task, train=True, evaluate=False)


def batch_arrays(batch) -> list[np.ndarray]:
    return [tensor.numpy() for tensor in tf.nest.flatten(batch)]


def test_a_restored_trainer_fast_forwards_distributed_data_to_the_saved_position(tmp_path):
    params = mock_params("runtime.distribution_strategy=one_device")
    trainer = one_device_trainer(params)
    trainer.train(tf.constant(10))
    path = trainer.checkpoint.write(str(tmp_path / "ckpt"))
    expected = batch_arrays(next(trainer.train_iterator))  # The 11th batch.

    resumed = one_device_trainer(params)
    resumed.checkpoint.read(path).assert_consumed()

    assert int(resumed.train_data_position.numpy()) == 10
    actual = batch_arrays(next(resumed.train_iterator))
    for array, expected_array in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(array, expected_array)
    # Not what a fresh pipeline starts with: the position mattered.
    first = batch_arrays(next(iter(one_device_trainer(params).train_dataset)))
    assert not np.array_equal(first[0], expected[0])


def test_the_data_position_kind_follows_the_dataset_and_a_task_may_opt_out(tmp_path):
    def saved_keys(trainer):
        trainer.train(tf.constant(3))
        path = trainer.checkpoint.write(str(tmp_path / f"ckpt-{id(trainer)}"))
        return {name.split("/")[0] for name, _ in tf.train.list_variables(path)}

    params = mock_params("runtime.distribution_strategy=one_device")
    assert "train_data_position" in saved_keys(one_device_trainer(params))
    with tf.distribute.get_strategy().scope():
        plain = create_trainer(params, task_factory.get_task(params.task), True, False)
    keys = saved_keys(plain)
    assert "train_iterator" in keys
    assert "train_data_position" not in keys
    opted_out = task_factory.get_task(params.task)
    opted_out.checkpoint_iterator = False
    trainer = one_device_trainer(params, opted_out)
    assert trainer.train_data_position is None
    keys = saved_keys(trainer)
    assert "train_iterator" not in keys
    assert "train_data_position" not in keys


def test_recovery_under_a_strategy_goes_on_with_the_next_batches(tmp_path):
    params = mock_params(
        "runtime.distribution_strategy=one_device,trainer.steps_per_loop=20,"
        "trainer.summary_interval=20,trainer.checkpoint_interval=20,trainer.recovery_max_trials=1"
    )
    task = FlakyMockTask(params.task)
    trainer = one_device_trainer(params, task)
    train_lib.run_experiment(
        tf.distribute.OneDeviceStrategy("/cpu:0"),
        task,
        "train",
        params,
        str(tmp_path),
        trainer=trainer,
        show_progress=False,
    )
    assert bool(task.fired.numpy())
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == 200
    # Steps 41-60 ran twice (the blow-up at step 60 restored ckpt-40), on 20 new batches.
    assert reader.get_tensor("train_data_position/.ATTRIBUTES/VARIABLE_VALUE") == 220
