"""Each evaluation's iterator is destroyed off the evaluating thread.

Destroying an autotuned `tf.data` iterator (and a distributed dataset's iterator always holds
autotuned per-device iterators) can block inside TensorFlow until the iterator's autotuning
thread wakes up, for up to a minute. `StandardEvaluator` hands each finished evaluation's
iterator to `garden_orbit.utils.release_in_background`; these tests check where the
destruction happens, never how long it takes.
"""

import threading
import weakref

import orbit_testing as ot
import pytest

import garden_orbit as orbit
from garden_orbit import standard_runner
from garden_orbit._tensorflow import tf
from garden_orbit.utils.background_release import THREAD_NAME


@pytest.fixture
def destroyed_on(monkeypatch):
    """Records, for each evaluation iterator created, the thread that destroyed it."""
    threads: list[str] = []
    create = standard_runner._create_iterator

    def recording(dataset):
        iterator = create(dataset)
        weakref.finalize(iterator, lambda: threads.append(threading.current_thread().name))
        return iterator

    monkeypatch.setattr(standard_runner, "_create_iterator", recording)
    return threads


@pytest.mark.parametrize("distributed", [False, True])
def test_each_evaluation_iterator_is_destroyed_on_the_release_thread(destroyed_on, distributed):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0") if distributed else None
    with strategy.scope() if strategy else tf.distribute.get_strategy().scope():
        model = ot.LinearModel()
        dataset = ot.regression_dataset(repeat=False)
        if strategy:
            dataset = orbit.utils.make_distributed_dataset(strategy, lambda: dataset)
        evaluator = ot.RegressionEvaluator(dataset, model)
        results = [float(evaluator.evaluate(tf.constant(-1))["mse"]) for _ in range(3)]
    assert orbit.utils.wait_for_releases(timeout=120)
    assert len(destroyed_on) == 3  # Every evaluation's iterator is gone, none kept alive.
    assert set(destroyed_on) == {THREAD_NAME}  # None on the evaluating (main) thread.
    assert results[0] == results[1] == results[2] == pytest.approx(ot.numpy_mse(model))


def test_an_iterator_kept_between_evaluations_is_not_released(destroyed_on):
    evaluator = ot.RegressionEvaluator(
        ot.regression_dataset(),  # Endless: evaluated 2 steps at a time.
        ot.LinearModel(),
        options=orbit.StandardEvaluatorOptions(recreate_iterator_for_each_eval=False),
    )
    for _ in range(3):
        evaluator.evaluate(tf.constant(2))
    assert orbit.utils.wait_for_releases(timeout=120)
    assert destroyed_on == []


def test_release_in_background_destroys_on_its_own_thread():
    destroyed = threading.Event()
    seen = []

    class Recording:
        def __del__(self):
            seen.append(threading.current_thread().name)
            destroyed.set()

    orbit.utils.release_in_background([Recording()])
    assert destroyed.wait(timeout=60)
    assert orbit.utils.wait_for_releases(timeout=60)
    assert seen == [THREAD_NAME]
    with pytest.raises(TypeError, match="takes a list"):
        orbit.utils.release_in_background(Recording())
