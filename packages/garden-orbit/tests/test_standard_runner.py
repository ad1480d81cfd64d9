"""StandardTrainer and StandardEvaluator: loops, options, end of data, host-side reduce."""

import numpy as np
import orbit_testing as ot
import pytest

import garden_orbit as orbit
from garden_orbit._tensorflow import tf

TRAINER_OPTIONS = [
    orbit.StandardTrainerOptions(use_tf_function=False, use_tf_while_loop=False),
    orbit.StandardTrainerOptions(use_tf_function=True, use_tf_while_loop=False),
    orbit.StandardTrainerOptions(use_tf_function=True, use_tf_while_loop=True),
    orbit.StandardTrainerOptions(use_tpu_summary_optimization=True),
]
OPTION_IDS = ["eager", "tf_function", "while_loop", "tpu_summaries"]


@pytest.mark.parametrize("options", TRAINER_OPTIONS, ids=OPTION_IDS)
def test_trainer_runs_the_requested_steps_and_learns(options):
    trainer = ot.RegressionTrainer(ot.regression_dataset(), options=options)
    first = trainer.train(tf.constant(5))
    assert trainer.global_step.numpy() == 5
    for _ in range(10):
        last = trainer.train(tf.constant(5))
    assert trainer.global_step.numpy() == 55
    assert float(last["loss"]) < 0.1 * float(first["loss"])
    np.testing.assert_allclose(trainer.model.w.numpy(), ot.TRUE_W, atol=0.05)


@pytest.mark.parametrize("options", TRAINER_OPTIONS, ids=OPTION_IDS)
def test_trainer_stops_exactly_at_the_end_of_the_data(options):
    # 10 batches; the step also bumps a counter that does not depend on the data, which must
    # not move once the data is exhausted.
    trainer = ot.RegressionTrainer(ot.regression_dataset(80, repeat=False), options=options)
    steps = []
    for _ in range(4):
        trainer.train(tf.constant(4))
        steps.append(int(trainer.global_step.numpy()))
    assert steps == [4, 8, 10, 10]


def test_trainer_with_nested_datasets_passes_a_structure_of_iterators():
    class PairTrainer(orbit.StandardTrainer):
        def __init__(self):
            self.total = tf.Variable(0, dtype=tf.int64)
            super().__init__({"a": tf.data.Dataset.range(100), "b": tf.data.Dataset.range(100)})

        def train_step(self, iterator):
            self.total.assign_add(next(iterator["a"]) + 10 * next(iterator["b"]))

    trainer = PairTrainer()
    trainer.train(tf.constant(3))
    assert trainer.total.numpy() == (0 + 1 + 2) * 11


def test_setting_train_dataset_restarts_the_iterator():
    trainer = ot.RegressionTrainer(ot.regression_dataset(16, repeat=False))
    trainer.train(tf.constant(5))
    assert trainer.global_step.numpy() == 2
    trainer.train_dataset = ot.regression_dataset(16, repeat=False)
    trainer.train(tf.constant(5))
    assert trainer.global_step.numpy() == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"use_tf_function": False, "use_tf_while_loop": True}, "needs use_tf_function"),
        (
            {"use_tf_while_loop": False, "use_tpu_summary_optimization": True},
            "needs use_tf_while_loop",
        ),
    ],
)
def test_trainer_options_reject_impossible_combinations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        orbit.StandardTrainerOptions(**kwargs)


EVALUATOR_OPTIONS = [
    orbit.StandardEvaluatorOptions(use_tf_function=False),
    orbit.StandardEvaluatorOptions(use_tf_function=True),
    orbit.StandardEvaluatorOptions(use_tf_while_loop=True),
]


@pytest.mark.parametrize("options", EVALUATOR_OPTIONS, ids=["eager", "tf_function", "while"])
def test_evaluator_covers_the_whole_dataset(options):
    model = ot.LinearModel()
    model.w.assign(ot.TRUE_W * 0.5)
    evaluator = ot.RegressionEvaluator(ot.regression_dataset(64, repeat=False), model, options)
    result = evaluator.evaluate(tf.constant(-1))
    assert float(result["mse"]) == pytest.approx(ot.numpy_mse(model), rel=1e-5)
    # Iterators are recreated, so a second full evaluation sees the same data.
    again = evaluator.evaluate(tf.constant(-1))
    assert float(again["mse"]) == pytest.approx(float(result["mse"]), rel=1e-6)


def test_evaluator_can_continue_its_iterator_between_evaluations():
    class CountingEvaluator(orbit.StandardEvaluator):
        def __init__(self, options):
            self.seen = tf.Variable(0, dtype=tf.int64)
            super().__init__(tf.data.Dataset.range(10), options)

        def eval_begin(self):
            self.seen.assign(-1)

        def eval_step(self, iterator):
            self.seen.assign(next(iterator))

        def eval_end(self):
            return {"last": self.seen}

    keep = CountingEvaluator(orbit.StandardEvaluatorOptions(recreate_iterator_for_each_eval=False))
    assert keep.evaluate(tf.constant(3))["last"].numpy() == 2
    assert keep.evaluate(tf.constant(3))["last"].numpy() == 5
    fresh = CountingEvaluator(orbit.StandardEvaluatorOptions())
    assert fresh.evaluate(tf.constant(3))["last"].numpy() == 2
    assert fresh.evaluate(tf.constant(3))["last"].numpy() == 2


def test_evaluator_reduces_step_outputs_on_the_host():
    class CollectingEvaluator(orbit.StandardEvaluator):
        def eval_begin(self):
            return []

        def eval_step(self, iterator):
            return next(iterator)

        def eval_reduce(self, state=None, step_outputs=None):
            state.append(step_outputs.numpy())  # Arbitrary Python: runs eagerly.
            return state

        def eval_end(self, state):
            return {"count": len(state), "total": float(np.sum(np.concatenate(state)))}

    evaluator = CollectingEvaluator(tf.data.Dataset.range(10).batch(3))
    assert evaluator.evaluate(tf.constant(-1)) == {"count": 4, "total": 45.0}


@pytest.mark.parametrize("num_steps", [-1, 2])
def test_evaluator_while_loop_with_tensor_state(num_steps):
    class SummingEvaluator(orbit.StandardEvaluator):
        def eval_begin(self):
            return {"total": tf.constant(0, tf.int64), "batches": tf.constant(0)}

        def eval_step(self, iterator):
            return tf.reduce_sum(next(iterator))

        def eval_reduce(self, state=None, step_outputs=None):
            return {"total": state["total"] + step_outputs, "batches": state["batches"] + 1}

        def eval_end(self, state):
            return state

    evaluator = SummingEvaluator(
        tf.data.Dataset.range(10).batch(3),
        orbit.StandardEvaluatorOptions(use_tf_while_loop=True),
    )
    result = evaluator.evaluate(tf.constant(num_steps))
    expected = (45, 4) if num_steps == -1 else (0 + 1 + 2 + 3 + 4 + 5, 2)
    assert (int(result["total"]), int(result["batches"])) == expected


def test_evaluator_options_reject_while_loop_without_tf_function():
    with pytest.raises(ValueError, match="needs use_tf_function"):
        orbit.StandardEvaluatorOptions(use_tf_function=False, use_tf_while_loop=True)


def test_infinite_datasets_skip_the_end_of_data_check_and_finite_ones_keep_it():
    assert orbit.utils.is_infinite(tf.data.Dataset.range(3).repeat())
    assert not orbit.utils.is_infinite(tf.data.Dataset.range(3).repeat(2))
    assert not orbit.utils.is_infinite(tf.data.Dataset.range(9).filter(lambda x: x > 2))
    trainer = ot.RegressionTrainer(ot.regression_dataset(repeat=True))
    trainer.train(tf.constant(3))
    # Switching to a finite dataset rebuilds the loop, which now stops at the end of the data.
    trainer.train_dataset = ot.regression_dataset(16, repeat=False)
    trainer.train(tf.constant(5))
    assert trainer.global_step.numpy() == 3 + 2
