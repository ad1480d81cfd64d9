"""Tests for `garden_orbit.actions.NewBestMetric` and `JSONPersistedValue`."""

import json
import math
import os
import pathlib

import numpy as np
import pytest

from garden_orbit import actions
from garden_orbit._tensorflow import tf


def test_first_value_is_a_new_best_and_higher_is_better_by_default():
    metric = actions.NewBestMetric("accuracy")
    assert metric.best_value is None
    results = [metric({"accuracy": value}) for value in (0.5, 0.4, 0.6, 0.6, 0.55)]
    assert results == [True, False, True, False, False]
    assert metric.best_value == pytest.approx(0.6)


def test_lower_is_better():
    metric = actions.NewBestMetric("loss", higher_is_better=False)
    results = [metric({"loss": value}) for value in (2.0, 3.0, 1.5, 1.5, -1.0)]
    assert results == [True, False, True, False, True]
    assert metric.best_value == -1.0


def test_test_does_not_record_but_commit_does():
    metric = actions.NewBestMetric("accuracy")
    output = {"accuracy": 0.7}
    assert metric.test(output)
    assert metric.test(output)
    assert metric.best_value is None
    assert metric.commit(output)
    assert not metric.test(output)
    assert not metric.commit(output)
    assert metric.best_value == pytest.approx(0.7)


def test_tensor_values_and_metric_functions():
    by_key = actions.NewBestMetric("accuracy")
    assert by_key({"accuracy": tf.constant(0.25)})
    assert by_key({"accuracy": np.float32(0.5)})
    assert not by_key({"accuracy": tf.constant([0.4])})  # A one-element tensor is a scalar.
    assert by_key.best_value == pytest.approx(0.5)

    by_function = actions.NewBestMetric(lambda output: output["eval"]["f1"] * 2)
    assert by_function({"eval": {"f1": tf.constant(0.3)}})
    assert by_function.best_value == pytest.approx(0.6)


def test_nan_is_never_a_new_best():
    metric = actions.NewBestMetric("accuracy")
    assert not metric({"accuracy": float("nan")})
    assert metric.best_value is None
    assert metric({"accuracy": 0.1})
    assert not metric({"accuracy": tf.constant(math.nan)})
    assert not metric.test({"accuracy": math.nan})
    assert metric.best_value == pytest.approx(0.1)


def test_missing_key_names_the_key_and_the_keys_present():
    metric = actions.NewBestMetric("accuracy")
    with pytest.raises(KeyError, match=r"'accuracy'.*keys present: 'loss', 'top_5'"):
        metric({"top_5": 0.9, "loss": 1.0})


def test_non_scalar_or_non_dict_outputs_are_errors():
    metric = actions.NewBestMetric("accuracy")
    with pytest.raises(ValueError, match="single real number"):
        metric({"accuracy": tf.constant([0.1, 0.2])})
    with pytest.raises(TypeError, match="dict output"):
        metric(0.5)
    with pytest.raises(TypeError, match="output key or a function"):
        actions.NewBestMetric(3)


def test_best_value_persists_across_instances(tmp_path):
    filename = str(tmp_path / "best" / "accuracy.json")
    first = actions.NewBestMetric("accuracy", filename=filename)
    assert first({"accuracy": 0.7})
    assert first({"accuracy": 0.8})
    assert json.loads(pathlib.Path(filename).read_text()) == pytest.approx(0.8)

    restarted = actions.NewBestMetric("accuracy", filename=filename)
    assert restarted.best_value == pytest.approx(0.8)
    assert not restarted({"accuracy": 0.75})
    assert restarted({"accuracy": 0.85})
    assert actions.NewBestMetric("accuracy", filename=filename).best_value == pytest.approx(0.85)


def test_persisted_lower_is_better(tmp_path):
    filename = str(tmp_path / "best_loss.json")
    assert actions.NewBestMetric("loss", higher_is_better=False, filename=filename)({"loss": 0.3})
    restarted = actions.NewBestMetric("loss", higher_is_better=False, filename=filename)
    assert not restarted({"loss": 0.4})
    assert restarted({"loss": 0.2})


def test_write_metric_false_reads_but_never_writes(tmp_path):
    filename = str(tmp_path / "best.json")
    reader = actions.NewBestMetric("accuracy", filename=filename, write_metric=False)
    assert not os.path.exists(filename)
    assert reader({"accuracy": 0.5})
    assert not os.path.exists(filename)

    actions.NewBestMetric("accuracy", filename=filename)({"accuracy": 0.6})
    reader = actions.NewBestMetric("accuracy", filename=filename, write_metric=False)
    assert reader.best_value == pytest.approx(0.6)
    assert reader({"accuracy": 0.9})
    assert json.loads(pathlib.Path(filename).read_text()) == pytest.approx(0.6)


def test_a_file_holding_a_non_number_is_rejected(tmp_path):
    filename = tmp_path / "best.json"
    filename.write_text('{"accuracy": 0.5}')
    with pytest.raises(ValueError, match="not a best metric value"):
        actions.NewBestMetric("accuracy", filename=str(filename))


def test_json_value_starts_from_the_initial_value_and_writes_it(tmp_path):
    filename = tmp_path / "sub" / "value.json"
    value = actions.JSONPersistedValue({"count": 0}, str(filename))
    assert value.read() == {"count": 0}
    assert json.loads(filename.read_text()) == {"count": 0}
    value.write({"count": 3, "names": ["a", "b"]})
    assert value.read() == {"count": 3, "names": ["a", "b"]}
    assert json.loads(filename.read_text()) == {"count": 3, "names": ["a", "b"]}
    # Only the value file is left: the temporary file was renamed over it.
    assert os.listdir(filename.parent) == ["value.json"]
    # The file wins over the initial value on construction.
    assert actions.JSONPersistedValue(None, str(filename)).read()["count"] == 3


def test_json_value_without_writing_or_without_a_file(tmp_path):
    filename = tmp_path / "value.json"
    value = actions.JSONPersistedValue(1, str(filename), write_value=False)
    value.write(2)
    assert value.read() == 2
    assert not filename.exists()
    in_memory = actions.JSONPersistedValue([1], None)
    in_memory.write([1, 2])
    assert in_memory.read() == [1, 2]
    assert in_memory.filename is None


def test_corrupt_json_is_a_clear_error_naming_the_file(tmp_path):
    filename = tmp_path / "value.json"
    filename.write_text('{"count": 3')  # What a non-atomic writer killed mid-write leaves.
    with pytest.raises(ValueError, match=r"value\.json does not contain valid JSON"):
        actions.JSONPersistedValue(0, str(filename))


def test_empty_file_counts_as_absent(tmp_path):
    filename = tmp_path / "value.json"
    filename.write_text("")
    assert actions.JSONPersistedValue(7, str(filename)).read() == 7
    assert json.loads(filename.read_text()) == 7


def test_a_failed_write_keeps_the_old_content_intact(tmp_path, monkeypatch):
    filename = tmp_path / "value.json"
    value = actions.JSONPersistedValue(0.5, str(filename))

    def failing_rename(*args, **kwargs):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(tf.io.gfile, "rename", failing_rename)  # Remote paths.
    monkeypatch.setattr(os, "replace", failing_rename)  # Local paths.
    with pytest.raises(OSError, match="simulated crash"):
        value.write(0.9)
    monkeypatch.undo()

    assert json.loads(filename.read_text()) == 0.5
    assert os.listdir(tmp_path) == ["value.json"]  # The temporary file was removed.
    assert value.read() == 0.5


def test_non_serializable_values_are_rejected_and_not_stored(tmp_path):
    filename = tmp_path / "value.json"
    value = actions.JSONPersistedValue(1, str(filename))
    with pytest.raises(TypeError, match="not JSON-serializable"):
        value.write(object())
    assert value.read() == 1
    assert json.loads(filename.read_text()) == 1
