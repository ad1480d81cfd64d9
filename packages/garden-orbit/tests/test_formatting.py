"""Metric values as people and programs read them: log lines and metrics.jsonl records."""

import json
import math

import numpy as np
import orbit_testing as ot

import garden_orbit as orbit
from garden_orbit._tensorflow import tf


def test_format_metrics_writes_numpy_and_tf_scalars_as_short_plain_numbers():
    metrics = {
        "accuracy": np.float32(0.12099359),
        "top_3_accuracy": tf.constant(0.333133),
        "training_loss": tf.Variable(2.453391),
        "learning_rate": np.float64(1e-4),
        "examples": np.int64(1200),
    }
    line = orbit.utils.format_metrics(metrics)
    assert line == (
        "accuracy 0.121   top_3_accuracy 0.333   training_loss 2.45    "
        "learning_rate 1.00e-04  examples 1200"
    )


def test_format_number_covers_every_kind_of_value():
    cases = [
        (0.5, "0.500"),
        (np.float16(12.34), "12.3"),
        (99.96, "100"),
        (4312.4, "4312"),
        (-0.0421, "-0.0421"),
        (0.0, "0"),
        (2.5e7, "2.50e+07"),
        (np.int32(7), "7"),
        (math.nan, "nan"),
        (np.float32(-np.inf), "-inf"),
        (np.array([0.25, 1.5]), "[0.250 1.50]"),
        (np.zeros((3, 4), np.float32), "<array float32 3x4>"),
        (tf.constant(b"ok"), "ok"),
        (np.bool_(True), "True"),
    ]
    for value, text in cases:
        assert orbit.utils.format_number(value) == text, value


def test_lines_of_the_same_metrics_line_up_and_nested_names_are_joined():
    first = orbit.utils.format_metrics({"loss": 2.45391, "accuracy": 0.5, "lr": 0.1})
    later = orbit.utils.format_metrics({"loss": 0.0912, "accuracy": 0.97213, "lr": 1e-5})
    for name in ("accuracy", "lr"):
        assert first.index(name) == later.index(name)
    nested = orbit.utils.format_metrics({"validation": {"top1": np.float32(0.9)}, "n": 3})
    assert nested == "validation/top1 0.900   n 3"
    assert orbit.utils.format_metrics({}) == ""


def test_metrics_jsonl_lines_hold_plain_json_numbers(tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = orbit.utils.MetricsJsonlWriter(str(path))
    writer.write(
        "eval",
        np.int64(20),
        {
            "accuracy": np.float32(0.12099359),
            "count": tf.constant(7, tf.int64),
            "per_class": {"cat": tf.constant(0.25), "dog": np.float64(0.75)},
            "confusion": np.array([[1, 0], [2, 3]], np.int32),
            "loss": np.float32(np.nan),
        },
    )
    text = path.read_text()
    assert "NaN" not in text  # Strict JSON,
    assert '"nan"' not in text  # and numbers, not strings.
    record = json.loads(text.splitlines()[0])
    metrics = record["metrics"]
    assert record["step"] == 20
    assert type(record["step"]) is int
    assert type(metrics["accuracy"]) is float
    assert abs(metrics["accuracy"] - 0.12099359) < 1e-7
    assert metrics["count"] == 7
    assert type(metrics["count"]) is int
    assert metrics["per_class"] == {"cat": 0.25, "dog": 0.75}  # Nested dicts stay nested.
    assert metrics["confusion"] == [[1, 0], [2, 3]]
    assert metrics["loss"] is None


def test_controller_logs_print_plain_numbers(tmp_path, capsys):
    trainer = ot.RegressionTrainer(ot.regression_dataset())
    evaluator = ot.RegressionEvaluator(ot.regression_dataset(repeat=False), trainer.model)
    controller = orbit.Controller(
        trainer=trainer,
        evaluator=evaluator,
        global_step=trainer.global_step,
        steps_per_loop=2,
        show_progress=False,
        summary_dir=str(tmp_path / "train"),
    )
    controller.train_and_evaluate(train_steps=2)
    printed = capsys.readouterr().out
    train_line = next(line for line in printed.splitlines() if "steps/sec" in line)
    eval_line = next(line for line in printed.splitlines() if "eval time" in line)
    loss = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["metrics"]
    assert train_line.endswith(f"| loss {orbit.utils.format_number(loss['loss'])}")
    assert " mse " in eval_line
    for line in (train_line, eval_line):
        assert "np." not in line
        assert "float32" not in line
        assert "{" not in line
