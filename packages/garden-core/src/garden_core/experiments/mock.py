"""The `mock` experiment: a tiny classifier on generated data, for trying out the runtime.

It trains in seconds on a CPU and exercises everything the runtime offers (every mode,
distribution, mixed precision, EMA, checkpoints, export), so tests and benchmarks of the
framework use it. The data are generated from `data_seed`: `num_examples` feature vectors
drawn from a standard normal distribution, labelled by the arg-max of a fixed random linear
map, so a small network learns them well. With `input_path` set, the task instead reads
TFRecords of `tf.train.Example`s with features `features` (`input_size` floats) and `label`
(an int) through `garden_core.data.InputReader`.

This module defines configs only (no TensorFlow); the task is in `mock_task`.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import (
    Config,
    DataConfig,
    ExperimentConfig,
    OptimizationConfig,
    RuntimeConfig,
    TaskConfig,
    TrainerConfig,
)


@dataclasses.dataclass
class MockModelConfig(Config):
    """A multilayer perceptron: `num_hidden_layers` ReLU layers of `hidden_size` units."""

    input_size: int = 8
    hidden_size: int = 16
    num_hidden_layers: int = 1
    num_classes: int = 4
    use_batch_norm: bool = False

    restrictions = ("input_size > 0", "hidden_size > 0", "num_classes > 1")


@dataclasses.dataclass
class MockDataConfig(DataConfig):
    """Generated data (or TFRecords when `input_path` is set)."""

    num_examples: int = 512
    data_seed: int = 0

    restrictions = ("num_examples > 0",)


@dataclasses.dataclass
class MockTaskConfig(TaskConfig):
    """The mock task: classify generated feature vectors."""

    model: MockModelConfig = dataclasses.field(default_factory=MockModelConfig)
    train_data: MockDataConfig = dataclasses.field(
        default_factory=lambda: MockDataConfig(
            is_training=True, global_batch_size=32, seed=1, data_seed=0
        )
    )
    validation_data: MockDataConfig = dataclasses.field(
        default_factory=lambda: MockDataConfig(
            is_training=False,
            global_batch_size=32,
            drop_remainder=False,
            data_seed=1,
            num_examples=256,
        )
    )


def mock_experiment() -> ExperimentConfig:
    """The `mock` experiment: 200 steps of SGD with momentum, evaluated every 100."""
    return ExperimentConfig(
        task=MockTaskConfig(),
        trainer=TrainerConfig(
            train_steps=200,
            steps_per_loop=50,
            summary_interval=50,
            checkpoint_interval=100,
            validation_interval=100,
            validation_steps=-1,
            best_checkpoint_eval_metric="accuracy",
            best_checkpoint_export_subdir="best_ckpt",
            best_checkpoint_metric_comp="higher",
            optimizer_config=OptimizationConfig.from_dict(
                {
                    "optimizer": {"type": "sgd", "sgd": {"momentum": 0.9}},
                    "learning_rate": {"type": "constant", "constant": {"learning_rate": 0.05}},
                }
            ),
        ),
        runtime=RuntimeConfig(distribution_strategy="off"),
    )
