"""garden_orbit.examples.single_task: Orbit's SingleTaskTrainer and SingleTaskEvaluator."""

import json
import subprocess
import sys

import keras
import numpy as np

import garden_orbit as orbit
from garden_orbit._tensorflow import tf
from garden_orbit.examples import single_task
from garden_orbit.examples.single_task import single_task_evaluator, single_task_trainer

NUM_FEATURES = 4
NUM_CLASSES = 3
# The label of x is argmax(x @ RULE): three linearly separable classes.
RULE = np.array(
    [[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [0.5, 0.5, -1.0]], dtype=np.float32
)


def _data(num_examples: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_examples, NUM_FEATURES)).astype(np.float32)
    labels = np.argmax(features @ RULE, axis=1).astype(np.int32)
    return {"features": features, "label": labels}


def _dataset(num_examples: int, batch_size: int, seed: int, repeat: bool) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices(_data(num_examples, seed))
    dataset = dataset.batch(batch_size, drop_remainder=repeat)
    return dataset.repeat() if repeat else dataset


def _model(seed: int = 0) -> keras.Model:
    """A softmax regression on the "features" entry of a dict, with fixed initial weights."""
    inputs = keras.Input(shape=(NUM_FEATURES,), name="features")
    dense = keras.layers.Dense(NUM_CLASSES)
    model = keras.Model({"features": inputs}, dense(inputs))
    rng = np.random.default_rng(seed)
    dense.set_weights(
        [
            rng.normal(scale=0.1, size=(NUM_FEATURES, NUM_CLASSES)).astype(np.float32),
            np.zeros(NUM_CLASSES, np.float32),
        ]
    )
    return model


def _loss_fn(target, output):
    return keras.losses.sparse_categorical_crossentropy(target, output, from_logits=True)


def _accuracy():
    return keras.metrics.SparseCategoricalAccuracy("accuracy")


def _train(strategy, train_steps=120, steps_per_loop=20, global_batch_size=16):
    """Trains and evaluates under `strategy`; returns (model, trainer, train outputs, eval)."""
    with strategy.scope():
        model = _model()
        # Momentum gives the optimizer slot variables, which the trainer must build under
        # the strategy's scope before the first (in-graph, per-replica) step.
        optimizer = keras.optimizers.SGD(learning_rate=0.2, momentum=0.9)
        train_data = orbit.utils.make_distributed_dataset(
            strategy, _dataset(512, global_batch_size, seed=0, repeat=True)
        )
        eval_data = orbit.utils.make_distributed_dataset(
            strategy, _dataset(256, 32, seed=1, repeat=False)
        )
        trainer = single_task_trainer.SingleTaskTrainer(
            train_data,
            label_key="label",
            model=model,
            loss_fn=_loss_fn,
            optimizer=optimizer,
            metrics=[_accuracy()],
        )
        evaluator = single_task_evaluator.SingleTaskEvaluator(
            eval_data, label_key="label", model=model, metrics=_accuracy()
        )
    train_outputs = []
    controller = orbit.Controller(
        trainer=trainer,
        evaluator=evaluator,
        global_step=trainer.global_step,
        strategy=strategy,
        steps_per_loop=steps_per_loop,
        train_actions=[train_outputs.append],
        show_progress=False,
    )
    controller.train(train_steps)
    eval_output = controller.evaluate()
    return model, trainer, train_outputs, eval_output


def test_trains_a_keras_model_to_high_accuracy():
    model, trainer, train_outputs, eval_output = _train(tf.distribute.get_strategy())

    assert trainer.global_step is trainer.optimizer.iterations
    assert int(trainer.optimizer.iterations.numpy()) == 120
    assert len(train_outputs) == 6
    assert all(set(output) == {"accuracy", "training_loss"} for output in train_outputs)
    losses = [float(output["training_loss"]) for output in train_outputs]
    # The loss falls (each block reports the mean of its own steps: metrics are reset).
    assert losses[-1] < losses[0] / 3, losses
    assert losses[-1] == min(losses), losses
    assert float(train_outputs[-1]["accuracy"]) >= 0.9
    assert set(eval_output) == {"accuracy"}
    assert float(eval_output["accuracy"]) >= 0.9

    # The evaluator's accuracy is that of the model on the evaluation data.
    data = _data(256, seed=1)
    logits = model({"features": data["features"]}).numpy()
    expected = np.mean(np.argmax(logits, axis=1) == data["label"])
    np.testing.assert_allclose(float(eval_output["accuracy"]), expected, rtol=1e-6)


def test_mirrored_strategy_matches_one_device_with_the_same_global_batch():
    one_model, _, one_train, one_eval = _train(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    model, trainer, train_outputs, eval_output = _train(mirrored)

    assert int(trainer.global_step.numpy()) == 120
    for weights, reference in zip(model.get_weights(), one_model.get_weights(), strict=True):
        np.testing.assert_allclose(weights, reference, rtol=1e-5, atol=1e-5)
    # Each replica's loss is the mean over half of the global batch, so the mean over
    # replicas and steps is the one-device mean; accuracy counts the same examples.
    for output, reference in zip(train_outputs, one_train, strict=True):
        np.testing.assert_allclose(
            float(output["training_loss"]), float(reference["training_loss"]), rtol=1e-5
        )
        np.testing.assert_allclose(float(output["accuracy"]), float(reference["accuracy"]))
    np.testing.assert_allclose(float(eval_output["accuracy"]), float(one_eval["accuracy"]))
    assert float(eval_output["accuracy"]) >= 0.9
    # The loss mean reads the same outside the strategy's scope (as Orbit's own test reads it).
    np.testing.assert_allclose(
        trainer.train_loss.result().numpy(), float(train_outputs[-1]["training_loss"])
    )


class _CountingMetric:
    """Counts the examples it sees; resets through the Keras 2 `reset_states` name only."""

    name = "examples"

    def __init__(self):
        self.count = tf.Variable(0, dtype=tf.int64)

    def update_state(self, target, output):
        del output
        self.count.assign_add(tf.shape(target, out_type=tf.int64)[0])

    def result(self):
        return self.count.read_value()

    def reset_states(self):
        self.count.assign(0)


def test_eager_steps_single_metric_and_reset_states():
    model = _model()
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    batch_losses = []

    def recording_loss_fn(target, output):
        loss = _loss_fn(target, output)
        batch_losses.append(float(tf.reduce_mean(loss)))  # Steps run eagerly here.
        return loss

    trainer = single_task.SingleTaskTrainer(
        _dataset(64, 8, seed=0, repeat=True),
        label_key="label",
        model=model,
        loss_fn=recording_loss_fn,
        optimizer=optimizer,
        metrics=_CountingMetric(),
        trainer_options=orbit.StandardTrainerOptions(
            use_tf_function=False, use_tf_while_loop=False
        ),
    )
    assert optimizer.built  # Built for the model's variables by the constructor.
    first = trainer.train(tf.constant(3))
    second = trainer.train(tf.constant(2))
    assert int(trainer.global_step.numpy()) == 5
    assert int(first["examples"]) == 24
    assert int(second["examples"]) == 16  # Metrics are reset between blocks of steps.
    # Each block reports the mean of its own batch losses.
    assert trainer.train_loss.name == "training_loss"
    np.testing.assert_allclose(float(first["training_loss"]), np.mean(batch_losses[:3]), 1e-6)
    np.testing.assert_allclose(float(second["training_loss"]), np.mean(batch_losses[3:]), 1e-6)
    np.testing.assert_allclose(trainer.train_loss.result().numpy(), np.mean(batch_losses[3:]))

    evaluator = single_task.SingleTaskEvaluator(
        _dataset(40, 16, seed=1, repeat=False),
        label_key="label",
        model=model,
        metrics=(_CountingMetric(),),
        evaluator_options=orbit.StandardEvaluatorOptions(use_tf_function=False),
    )
    assert int(evaluator.evaluate(tf.constant(-1))["examples"]) == 40
    assert int(evaluator.evaluate(tf.constant(-1))["examples"]) == 40


def test_imports_stay_out_of_garden_orbit_and_load_no_keras():
    code = (
        "import json, sys\n"
        "import garden_orbit\n"
        "after_orbit = sorted(m for m in sys.modules if m.startswith('garden_orbit.examples'))\n"
        "from garden_orbit.examples.single_task import single_task_evaluator\n"
        "from garden_orbit.examples.single_task import single_task_trainer\n"
        "from garden_orbit.examples.single_task import SingleTaskEvaluator, SingleTaskTrainer\n"
        "assert SingleTaskTrainer is single_task_trainer.SingleTaskTrainer\n"
        "assert SingleTaskEvaluator is single_task_evaluator.SingleTaskEvaluator\n"
        "keras = sorted(m for m in sys.modules if m == 'keras' or m.startswith('keras.'))\n"
        "print(json.dumps({'after_orbit': after_orbit, 'keras': keras}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"after_orbit": [], "keras": []}
