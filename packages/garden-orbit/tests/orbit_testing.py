"""Small models, datasets, trainers and evaluators shared by the garden-orbit tests.

Everything is plain TensorFlow (no Keras): a linear regression trained by gradient descent,
which makes results easy to check against NumPy and cheap to run.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

import garden_orbit as orbit
from garden_orbit._tensorflow import tf

TRUE_W = np.array([[1.0], [-2.0], [3.0]], dtype=np.float32)
TRUE_B = 0.5


def configure_logical_cpus(count: int = 2) -> None:
    """Splits the CPU into `count` logical devices (before TensorFlow initializes)."""
    cpus = tf.config.list_physical_devices("CPU")
    # A RuntimeError means TensorFlow was initialized already (e.g. by another conftest).
    with contextlib.suppress(RuntimeError):
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )


def regression_data(num_examples: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Returns (x, y) with y = x @ TRUE_W + TRUE_B + small noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_examples, 3)).astype(np.float32)
    noise = 0.01 * rng.normal(size=(num_examples, 1)).astype(np.float32)
    return x, x @ TRUE_W + TRUE_B + noise


def regression_dataset(
    num_examples: int = 64,
    batch_size: int = 8,
    repeat: bool = True,
    shuffle_seed: int | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """A dataset of (x, y) batches; finite (num_examples // batch_size batches) unless repeat."""
    dataset = tf.data.Dataset.from_tensor_slices(regression_data(num_examples, seed))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(num_examples, seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.repeat() if repeat else dataset


class LinearModel(tf.Module):
    """y = x @ w + b, with variables safe to update from every replica."""

    def __init__(self):
        super().__init__()
        kwargs = {"aggregation": tf.VariableAggregation.ONLY_FIRST_REPLICA}
        self.w = tf.Variable(tf.zeros([3, 1]), name="w", **kwargs)
        self.b = tf.Variable(0.0, name="b", **kwargs)

    def __call__(self, x):
        return tf.matmul(x, self.w) + self.b

    def weights(self) -> np.ndarray:
        return np.concatenate([self.w.numpy().ravel(), [self.b.numpy()]])


class RegressionTrainer(orbit.StandardTrainer):
    """Trains LinearModel with plain gradient descent on the mean squared error."""

    def __init__(
        self,
        dataset,
        model: LinearModel | None = None,
        global_step: tf.Variable | None = None,
        learning_rate: float = 0.1,
        options: orbit.StandardTrainerOptions | None = None,
        global_batch_size: int = 8,
    ):
        self.strategy = tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = model or LinearModel()
            self.global_step = (
                global_step if global_step is not None else orbit.utils.create_global_step()
            )
            self.loss_sum = tf.Variable(0.0, aggregation=tf.VariableAggregation.SUM)
            self.loss_count = tf.Variable(
                0.0, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
            )
        self.learning_rate = learning_rate
        self.global_batch_size = global_batch_size
        self.loop_sizes: list[int] = []
        super().__init__(dataset, options)

    def train_loop_begin(self):
        self.loss_sum.assign(0.0)
        self.loss_count.assign(0.0)

    def train_step(self, iterator):
        def replica_step(inputs):
            x, y = inputs
            variables = [self.model.w, self.model.b]
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(self.model(x) - y)) / self.global_batch_size
            grads = tape.gradient(loss, variables)
            grads = tf.distribute.get_replica_context().all_reduce("sum", grads)
            for var, grad in zip(variables, grads, strict=True):
                var.assign_sub(self.learning_rate * grad)
            self.loss_sum.assign_add(loss)
            self.loss_count.assign_add(1.0)
            orbit.utils.scalar_summary("in_loop_loss", loss, step=self.global_step)

        self.strategy.run(replica_step, args=(next(iterator),))
        self.global_step.assign_add(1)

    def train(self, num_steps):
        self.loop_sizes.append(int(num_steps))
        return super().train(num_steps)

    def train_loop_end(self):
        return {"loss": self.loss_sum / tf.maximum(self.loss_count, 1.0)}


class RegressionEvaluator(orbit.StandardEvaluator):
    """Reports the mean squared error of a LinearModel over a dataset."""

    def __init__(self, dataset, model: LinearModel, options=None):
        self.strategy = tf.distribute.get_strategy()
        self.model = model
        with self.strategy.scope():
            self.error_sum = tf.Variable(0.0, aggregation=tf.VariableAggregation.SUM)
            self.example_count = tf.Variable(0.0, aggregation=tf.VariableAggregation.SUM)
        super().__init__(dataset, options)

    def eval_begin(self):
        self.error_sum.assign(0.0)
        self.example_count.assign(0.0)

    def eval_step(self, iterator):
        def replica_step(inputs):
            x, y = inputs
            self.error_sum.assign_add(tf.reduce_sum(tf.square(self.model(x) - y)))
            self.example_count.assign_add(tf.cast(tf.shape(x)[0], tf.float32))

        self.strategy.run(replica_step, args=(next(iterator),))

    def eval_end(self, *args):
        return {"mse": self.error_sum / tf.maximum(self.example_count, 1.0)}


def numpy_mse(model: LinearModel, num_examples: int = 64, seed: int = 0) -> float:
    x, y = regression_data(num_examples, seed)
    prediction = x @ model.w.numpy() + model.b.numpy()
    return float(np.mean(np.square(prediction - y)))


def read_summaries(directory) -> dict[str, list[tuple[int, float, str]]]:
    """Reads the event files in `directory`: tag -> [(step, value, plugin name), ...]."""
    summaries: dict[str, list[tuple[int, float, str]]] = {}
    for name in sorted(tf.io.gfile.listdir(str(directory))):
        if "tfevents" not in name:
            continue
        for record in tf.data.TFRecordDataset(os.path.join(str(directory), name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                summaries.setdefault(value.tag, []).append(
                    (
                        event.step,
                        float(tf.make_ndarray(value.tensor)),
                        value.metadata.plugin_data.plugin_name,
                    )
                )
    return summaries
