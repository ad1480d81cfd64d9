"""The two contracts at the heart of garden-orbit: `AbstractTrainer` and `AbstractEvaluator`.

A training program has an inner loop (run N steps on the accelerator, as fast as possible)
and an outer loop (checkpoint, evaluate, write summaries, decide when to stop). garden-orbit
keeps the two apart: a user implements the inner loops through these interfaces, and
`garden_orbit.Controller` drives them. The interfaces are deliberately tiny, so any training
style, from a hand-written `tf.function` to a Keras model, fits behind them;
`garden_orbit.StandardTrainer` and `garden_orbit.StandardEvaluator` are ready-made
implementations for the common case.
"""

from __future__ import annotations

import abc

import numpy as np

from garden_orbit._tensorflow import tf

# What `train` and `evaluate` may return: a value, or a (nested) dict of values, which the
# Controller converts to NumPy, logs, writes as summaries and hands to actions.
Output = tf.Tensor | float | np.number | np.ndarray | dict[str, "Output"]


class AbstractTrainer(tf.Module, metaclass=abc.ABCMeta):
    """An object that runs a given number of training steps.

    It is a `tf.Module`, so variables created on it (step counters, metrics) are tracked and
    can be checkpointed together with it.
    """

    @abc.abstractmethod
    def train(self, num_steps: tf.Tensor) -> Output | None:
        """Runs `num_steps` training steps and returns their output.

        The Controller calls this with a scalar int32 tensor so that a `tf.function` taking
        it is traced once, whatever the number of steps. Each step must advance the global
        step that the Controller was given: the Controller measures progress with it. A
        trainer whose data runs out runs fewer steps than asked (none at all once it is
        exhausted); `Controller.train(steps=None)` uses that to train to the end of the data.

        Args:
          num_steps: The number of training steps to run.

        Returns:
          Values to log and summarize (scalars, or a nested dict of them), or None.
        """


class AbstractEvaluator(tf.Module, metaclass=abc.ABCMeta):
    """An object that runs evaluation and returns its results."""

    @abc.abstractmethod
    def evaluate(self, num_steps: tf.Tensor) -> Output | None:
        """Runs `num_steps` evaluation steps and returns the results.

        Args:
          num_steps: The number of evaluation steps to run. The value -1 means "run over
            the whole evaluation dataset until it is exhausted"; evaluators that cannot do
            that should raise a `ValueError` for it.

        Returns:
          Values to log and summarize (scalars, or a nested dict of them), or None.
        """
