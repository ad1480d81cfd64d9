"""garden_orbit.utils: step counters, loops, summaries, epochs and dataset distribution."""

import os

import numpy as np
import orbit_testing as ot
import pytest

import garden_orbit as orbit
from garden_orbit._tensorflow import tf


def test_create_global_step_is_an_int64_first_replica_variable():
    step = orbit.utils.create_global_step()
    assert step.dtype == tf.int64
    assert step.numpy() == 0
    assert step.aggregation == tf.VariableAggregation.ONLY_FIRST_REPLICA
    assert not step.trainable


def test_get_value_converts_tensors_and_keeps_the_rest():
    assert orbit.utils.get_value(tf.constant(3.0)) == 3.0
    assert isinstance(orbit.utils.get_value(tf.Variable([1, 2])), np.ndarray)
    assert orbit.utils.get_value("text") == "text"


def test_make_distributed_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="must be a tf.data.Dataset or a function"):
        orbit.utils.make_distributed_dataset(None, [1, 2, 3])
    with pytest.raises(ValueError, match="only used when `dataset_or_fn` is a function"):
        orbit.utils.make_distributed_dataset(None, tf.data.Dataset.range(3), 8)


def test_make_distributed_dataset_calls_a_function_without_input_context():
    dataset = orbit.utils.make_distributed_dataset(
        None, lambda n, offset=0: tf.data.Dataset.range(n).map(lambda x: x + offset), 3, offset=10
    )
    assert [int(x) for x in dataset] == [10, 11, 12]


def test_epoch_helper_reports_epoch_boundaries():
    step = tf.Variable(0, dtype=tf.int64)
    helper = orbit.utils.EpochHelper(epoch_steps=4, global_step=step)
    with pytest.raises(ValueError, match="outside an epoch"):
        helper.epoch_end()
    assert helper.epoch_begin()
    assert helper.current_epoch == 0
    assert not helper.epoch_begin()  # Already in an epoch.
    step.assign(3)
    assert helper.batch_index == 3
    assert not helper.epoch_end()
    step.assign(4)
    assert helper.epoch_end()
    assert helper.epoch_begin()
    assert helper.current_epoch == 1
    with pytest.raises(ValueError, match="positive integer"):
        orbit.utils.EpochHelper(0, step)


def test_create_loop_fn_reduces_and_stops_at_the_end():
    loop = orbit.utils.create_loop_fn(lambda iterator: next(iterator))
    iterator = iter(tf.data.Dataset.range(5))
    total = loop(iterator, 3, state=0, reduce_fn=lambda s, x: s + int(x))
    assert total == 0 + 1 + 2
    assert loop(iterator, -1, state=0, reduce_fn=lambda s, x: s + int(x)) == 3 + 4


def test_tf_while_loop_fn_needs_a_tensor_step_count():
    counter = tf.Variable(0, dtype=tf.int64)
    loop = orbit.utils.create_tf_while_loop_fn(lambda it: counter.assign_add(next(it)))
    with pytest.raises(ValueError, match="must be a tf.Tensor"):
        loop(iter(tf.data.Dataset.range(5)), 3)
    tf.function(loop)(iter(tf.data.Dataset.range(5)), tf.constant(4))
    assert counter.numpy() == 0 + 1 + 2 + 3


@pytest.mark.parametrize("compiled", [False, True])
def test_guarded_loops_never_run_a_step_past_the_data(compiled):
    # The step bumps `ticks` without reading the element's value: an unguarded loop that
    # catches OutOfRangeError would still bump it on the failing step.
    ticks = tf.Variable(0)

    def step(iterator):
        next(iterator)
        ticks.assign_add(1)

    if compiled:
        loop = tf.function(orbit.utils.create_guarded_tf_while_loop_fn(step))
        assert int(loop(iter(tf.data.Dataset.range(5)), tf.constant(-1))) == 5
    else:
        loop = orbit.utils.create_guarded_loop_fn(step)
        loop(iter(tf.data.Dataset.range(5)), -1)
    assert ticks.numpy() == 5


def test_peeked_iterator_yields_the_peeked_element_first():
    iterator = iter(tf.data.Dataset.range(3))
    peeked = orbit.utils.PeekedIterator(tf.constant(99, tf.int64), iterator)
    assert [int(next(peeked)), int(peeked.get_next()), int(next(peeked))] == [99, 0, 1]
    assert peeked.element_spec == iterator.element_spec


def _scalars(directory):
    """tag -> (step, value, plugin) of the last record of each tag."""
    return {tag: values[-1] for tag, values in ot.read_summaries(directory).items()}


def test_summary_manager_writes_nested_dicts_to_subdirectories(tmp_path):
    step = tf.Variable(7, dtype=tf.int64)
    manager = orbit.utils.SummaryManager(str(tmp_path), orbit.utils.scalar_summary, step)
    manager.write_summaries({"loss": 0.5, "task_a": {"accuracy": np.float32(0.75)}, "x": None})
    manager.flush()
    assert _scalars(tmp_path) == {"loss": (7, 0.5, "scalars")}
    assert _scalars(tmp_path / "task_a") == {"accuracy": (7, 0.75, "scalars")}


def test_disabled_summary_manager_writes_nothing(tmp_path):
    manager = orbit.utils.SummaryManager(None, orbit.utils.scalar_summary)
    manager.write_summaries({"loss": 1.0})
    manager.flush()
    assert not manager.enabled
    assert os.listdir(tmp_path) == []


def test_optional_summaries_function_compiles_summaries_out_when_not_recording(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    step = tf.Variable(0, dtype=tf.int64)
    fn = orbit.utils.OptionalSummariesFunction(
        lambda x: orbit.utils.scalar_summary("x", x, step=step)
    )
    with writer.as_default():
        with tf.summary.record_if(False):
            assert not bool(fn(1.0))
        with tf.summary.record_if(True):
            assert bool(fn(2.0))
    writer.flush()
    assert _scalars(tmp_path)["x"][1] == 2.0


def test_loop_fn_with_summaries_records_only_the_first_step(tmp_path):
    step = tf.Variable(0, dtype=tf.int64)

    def train_step(iterator):
        orbit.utils.scalar_summary("value", next(iterator), step=step)
        step.assign_add(1)

    loop = orbit.utils.LoopFnWithSummaries(orbit.utils.create_guarded_tf_while_loop_fn(train_step))
    writer = tf.summary.create_file_writer(str(tmp_path))
    iterator = iter(tf.data.Dataset.range(10).map(lambda x: tf.cast(x, tf.float32)))
    with writer.as_default(), tf.summary.record_if(True):
        assert int(loop(iterator, tf.constant(4))) == 4
    writer.flush()
    assert step.numpy() == 4
    assert _scalars(tmp_path) == {"value": (0, 0.0, "scalars")}


def test_progress_reporter_is_silent_off_a_terminal():
    import io

    stream = io.StringIO()
    reporter = orbit.utils.ProgressReporter(stream=stream)
    line = reporter.update(10, 100, 5.0, {"loss": 0.25, "nested": {"acc": 0.5}})
    assert stream.getvalue() == ""
    assert line == "step 10/100 | 5 steps/s | ETA 18s | loss 0.250   nested/acc 0.500"


def test_summary_manager_batches_scalars_and_obeys_record_if(tmp_path):
    step = tf.Variable(3, dtype=tf.int64)
    manager = orbit.utils.SummaryManager(str(tmp_path), orbit.utils.scalar_summary, step)
    values = {"loss": np.float32(0.5), "rate": 2, "array": np.array(1.5), "flag": True}
    manager.write_summaries(values)
    step.assign(4)
    with tf.summary.record_if(False):
        manager.write_summaries({**values, "loss": 9.0})
    step.assign(5)
    manager.write_summaries({**values, "loss": np.float64(0.25)})
    manager.flush()
    records = ot.read_summaries(tmp_path)
    assert [(s, v) for s, v, _ in records["loss"]] == [(3, 0.5), (5, 0.25)]
    assert [(s, v) for s, v, _ in records["rate"]] == [(3, 2.0), (5, 2.0)]
    assert [(s, v) for s, v, _ in records["array"]] == [(3, 1.5), (5, 1.5)]
    assert [(s, v) for s, v, _ in records["flag"]] == [(3, 1.0), (5, 1.0)]  # Eager path.
