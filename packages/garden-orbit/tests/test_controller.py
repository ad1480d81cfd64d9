"""Controller: outer loops, checkpoints, summaries, actions, progress and metrics.jsonl."""

import io
import json

import numpy as np
import orbit_testing as ot
import pytest

import garden_orbit as orbit
from garden_orbit._tensorflow import tf


def _setup(model_dir, dataset=None, checkpoint_interval=None, **controller_kwargs):
    trainer = ot.RegressionTrainer(dataset if dataset is not None else ot.regression_dataset())
    evaluator = ot.RegressionEvaluator(ot.regression_dataset(repeat=False), trainer.model)
    checkpoint = tf.train.Checkpoint(model=trainer.model, global_step=trainer.global_step)
    manager = tf.train.CheckpointManager(
        checkpoint,
        str(model_dir),
        max_to_keep=None,
        step_counter=trainer.global_step,
        checkpoint_interval=checkpoint_interval,
    )
    controller_kwargs.setdefault("steps_per_loop", 2)
    controller_kwargs.setdefault("show_progress", False)
    controller = orbit.Controller(
        trainer=trainer,
        evaluator=evaluator,
        global_step=trainer.global_step,
        checkpoint_manager=manager,
        **controller_kwargs,
    )
    return controller, trainer, manager


def _checkpoint_steps(manager):
    return [int(path.rsplit("-", 1)[1]) for path in manager.checkpoints]


def _event_tags(directory):
    return {
        tag: [step for step, _, _ in values] for tag, values in ot.read_summaries(directory).items()
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trainer": None, "evaluator": None}, "cannot both be None"),
        ({"steps_per_loop": None}, "steps_per_loop` is required"),
        ({"steps_per_loop": 0}, "must be a positive"),
        ({"steps_per_loop": 3, "summary_interval": 4}, "must be a multiple"),
        ({"summary_interval": -2}, "must be positive"),
        ({"global_step": 5}, "must be a tf.Variable"),
    ],
)
def test_constructor_rejects_inconsistent_arguments(kwargs, message):
    trainer = ot.RegressionTrainer(ot.regression_dataset())
    args = {"trainer": trainer, "global_step": trainer.global_step, "steps_per_loop": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        orbit.Controller(**args)


def test_train_saves_at_the_interval_and_at_completion(tmp_path):
    controller, trainer, manager = _setup(tmp_path, checkpoint_interval=4, steps_per_loop=3)
    controller.train(steps=10)
    assert trainer.global_step.numpy() == 10
    assert trainer.loop_sizes == [3, 3, 3, 1]
    # tf.train.CheckpointManager saves the first time it is asked, then once `interval` steps
    # have passed since the last save (3 -> 9), and the Controller saves at completion (10).
    assert _checkpoint_steps(manager) == [3, 9, 10]


def test_train_without_interval_saves_only_at_completion(tmp_path):
    controller, _, manager = _setup(tmp_path)
    controller.train(steps=6)
    assert _checkpoint_steps(manager) == [6]
    controller.train(steps=6)  # Nothing to do; the step is already saved.
    assert _checkpoint_steps(manager) == [6]


def test_a_new_controller_restores_the_latest_checkpoint(tmp_path):
    controller, trainer, _ = _setup(tmp_path)
    controller.train(steps=8)
    weights = trainer.model.weights()
    restarted, new_trainer, _ = _setup(tmp_path)
    assert new_trainer.global_step.numpy() == 8
    np.testing.assert_array_equal(new_trainer.model.weights(), weights)
    restarted.train(steps=12)
    assert new_trainer.global_step.numpy() == 12


def test_train_until_the_data_is_exhausted(tmp_path):
    dataset = ot.regression_dataset(80, repeat=False)  # 10 batches.
    controller, trainer, manager = _setup(tmp_path, dataset=dataset, steps_per_loop=4)
    controller.train()
    assert trainer.global_step.numpy() == 10
    assert _checkpoint_steps(manager) == [10]


def test_train_to_a_step_beyond_the_data_is_a_clear_error(tmp_path):
    controller, trainer, _ = _setup(tmp_path, dataset=ot.regression_dataset(32, repeat=False))
    with pytest.raises(RuntimeError, match=r"short of the target step 10.*exhausted"):
        controller.train(steps=10)
    assert trainer.global_step.numpy() == 4


def test_steps_per_loop_can_be_a_function_of_the_step(tmp_path):
    controller, trainer, _ = _setup(tmp_path, steps_per_loop=lambda step: 1 if step < 3 else 5)
    controller.train(steps=12)
    assert trainer.loop_sizes == [1, 1, 1, 5, 4]


def test_steps_per_loop_function_must_return_a_positive_int(tmp_path):
    controller, _, _ = _setup(tmp_path, steps_per_loop=lambda step: 0)
    with pytest.raises(ValueError, match=r"steps_per_loop\(0\) returned 0"):
        controller.train(steps=3)


def test_train_actions_see_each_block_and_eval_actions_each_evaluation(tmp_path):
    train_seen, eval_seen = [], []
    controller, trainer, _ = _setup(
        tmp_path,
        train_actions=[lambda out: train_seen.append((int(trainer.global_step), out["loss"]))],
        eval_actions=[lambda out: eval_seen.append(int(trainer.global_step))],
    )
    output = controller.train_and_evaluate(train_steps=8, eval_interval=4)
    assert [step for step, _ in train_seen] == [2, 4, 6, 8]
    assert all(tf.is_tensor(loss) for _, loss in train_seen)  # Actions get raw outputs.
    assert eval_seen == [4, 8]
    assert isinstance(output["mse"], np.floating)


def test_evaluate_returns_numpy_results_and_validates_steps(tmp_path):
    controller, trainer, _ = _setup(tmp_path)
    result = controller.evaluate()
    assert result["mse"] == pytest.approx(ot.numpy_mse(trainer.model), rel=1e-5)
    assert controller.evaluate(steps=2)["mse"] > 0
    with pytest.raises(ValueError, match="must be > 0 or -1"):
        controller.evaluate(steps=0)


def test_methods_name_the_missing_component(tmp_path):
    evaluator = ot.RegressionEvaluator(ot.regression_dataset(repeat=False), ot.LinearModel())
    controller = orbit.Controller(evaluator=evaluator, global_step=tf.Variable(0))
    with pytest.raises(ValueError, match="Controller.train needs `trainer`"):
        controller.train(steps=1)
    with pytest.raises(ValueError, match="needs `checkpoint_manager`"):
        controller.evaluate_continuously(timeout=0)


def test_evaluate_continuously_evaluates_the_latest_checkpoint(tmp_path):
    controller, trainer, _ = _setup(tmp_path)
    controller.train(steps=6)
    trained_mse = controller.evaluate()["mse"]

    evaluator = ot.RegressionEvaluator(ot.regression_dataset(repeat=False), ot.LinearModel())
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=evaluator.model, global_step=step), str(tmp_path), None
    )
    watcher = orbit.Controller(evaluator=evaluator, global_step=step, checkpoint_manager=manager)
    evaluator.model.w.assign(tf.zeros([3, 1]))  # Forget the restore done at construction.
    output = watcher.evaluate_continuously(timeout=0.01, timeout_fn=lambda: True)
    assert step.numpy() == 6
    assert output["mse"] == pytest.approx(trained_mse, rel=1e-6)


def test_summaries_go_to_train_and_validation_dirs(tmp_path):
    controller, _, _ = _setup(
        tmp_path,
        summary_dir=str(tmp_path / "train"),
        eval_summary_dir=str(tmp_path / "validation"),
        summary_interval=4,
    )
    controller.train_and_evaluate(train_steps=8, eval_interval=8)
    train_tags = _event_tags(tmp_path / "train")
    assert train_tags["loss"] == [2, 4, 6, 8]
    assert train_tags["steps_per_second"] == [2, 4, 6, 8]
    # In-loop summaries only when the step at the start of a loop is a multiple of 4.
    assert train_tags["in_loop_loss"] == [0, 4]
    assert _event_tags(tmp_path / "validation")["mse"] == [8]


def test_without_summary_interval_in_loop_summaries_are_not_recorded(tmp_path):
    controller, _, _ = _setup(tmp_path, summary_dir=str(tmp_path / "train"))
    controller.train(steps=4)
    assert "in_loop_loss" not in _event_tags(tmp_path / "train")


def test_metrics_jsonl_records_train_and_eval_outputs(tmp_path):
    controller, _, _ = _setup(tmp_path, summary_dir=str(tmp_path / "train"))
    controller.train_and_evaluate(train_steps=4, eval_interval=2)
    records = orbit.utils.read_metrics_jsonl(str(tmp_path / "metrics.jsonl"))
    assert [(r["mode"], r["step"]) for r in records] == [
        ("train", 2),
        ("eval", 2),
        ("train", 4),
        ("eval", 4),
    ]
    assert set(records[0]["metrics"]) == {"loss", "steps_per_second"}
    assert isinstance(records[1]["metrics"]["mse"], float)


def test_metrics_jsonl_can_be_turned_off_or_placed(tmp_path):
    controller, _, _ = _setup(tmp_path, summary_dir=str(tmp_path / "train"), metrics_jsonl=False)
    controller.train(steps=2)
    assert not (tmp_path / "metrics.jsonl").exists()
    path = tmp_path / "elsewhere" / "log.jsonl"
    controller, _, _ = _setup(tmp_path / "b", metrics_jsonl=str(path))
    controller.train(steps=2)
    assert len(path.read_text().splitlines()) == 1


def test_progress_line_shows_step_speed_eta_and_metrics(tmp_path, monkeypatch):
    controller, _, _ = _setup(tmp_path, show_progress=True)
    stream = io.StringIO()
    controller.progress = orbit.utils.ProgressReporter(stream=stream, enabled=True)
    controller.train(steps=6)
    text = stream.getvalue()
    last = text.split("\r")[-1]
    for part in ("step 6/6", "steps/s", "loss"):
        assert part in last
    assert "ETA" in text.split("\r")[1]  # Step 2 of 6 shows the remaining time.
    assert text.endswith("\n")  # The line is closed when training ends.


def test_async_checkpointing_writes_restorable_checkpoints(tmp_path):
    controller, trainer, manager = _setup(
        tmp_path, checkpoint_interval=2, enable_async_checkpointing=True
    )
    controller.train(steps=6)
    assert _checkpoint_steps(manager) == [2, 4, 6]
    _, restored, _ = _setup(tmp_path)
    np.testing.assert_array_equal(restored.model.weights(), trainer.model.weights())


def test_metrics_writer_repairs_a_line_cut_by_a_crash(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"mode": "train", "step": 1, "metrics": {}}) + '\n{"mode": "tr')
    orbit.utils.MetricsJsonlWriter(str(path)).write("train", 2, {"loss": float("nan")})
    records = orbit.utils.read_metrics_jsonl(str(path))
    assert [r["step"] for r in records] == [1, 2]
    assert records[1]["metrics"]["loss"] is None  # NaN is JSON null.
