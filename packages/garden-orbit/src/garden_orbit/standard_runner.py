"""Ready-made trainer and evaluator bases: implement one step, get a fast loop.

`StandardTrainer` and `StandardEvaluator` implement the `AbstractTrainer` and
`AbstractEvaluator` contracts for the common case of "iterate over a dataset and run a step
function". A subclass writes `train_step` (or `eval_step`) and optional begin/end hooks; the
base class builds the loop (a `tf.while_loop` inside one `tf.function` by default), manages
the dataset iterator, and stops cleanly when the data runs out.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

from garden_orbit import runner
from garden_orbit._tensorflow import tf
from garden_orbit.utils import loop_fns
from garden_orbit.utils.background_release import release_in_background
from garden_orbit.utils.tpu_summaries import LoopFnWithSummaries


@dataclasses.dataclass(frozen=True)
class StandardTrainerOptions:
    """How a `StandardTrainer` builds its training loop.

    Attributes:
      use_tf_function: Compile the training step (or the whole loop) with `tf.function`.
        Turn it off to debug steps eagerly.
      use_tf_while_loop: Run the loop itself inside the graph as a `tf.while_loop`, so a
        block of `steps_per_loop` steps costs one host round trip. Needs `use_tf_function`.
      use_tpu_summary_optimization: Trace the loop twice, with and without summary ops,
        and run summary ops only on the first step of a loop that should record them.
        Needs `use_tf_while_loop`.
    """

    use_tf_function: bool = True
    use_tf_while_loop: bool = True
    use_tpu_summary_optimization: bool = False

    def __post_init__(self):
        if self.use_tf_while_loop and not self.use_tf_function:
            raise ValueError(
                "StandardTrainerOptions: use_tf_while_loop=True needs use_tf_function=True."
            )
        if self.use_tpu_summary_optimization and not self.use_tf_while_loop:
            raise ValueError(
                "StandardTrainerOptions: use_tpu_summary_optimization=True needs "
                "use_tf_while_loop=True."
            )


def _create_iterator(dataset: Any) -> Any:
    return tf.nest.map_structure(iter, dataset)


class StandardTrainer(runner.AbstractTrainer, metaclass=abc.ABCMeta):
    """A trainer that iterates over a dataset and calls `train_step` for each step.

    Subclasses implement `train_step(iterator)` and may override `train_loop_begin` and
    `train_loop_end` (whose return value is the loop's output). When the dataset is a
    single `tf.data.Dataset` or distributed dataset, the loop stops at the end of the data:
    `train` then runs fewer steps than asked, and none once the data is exhausted. (A
    dataset known to be infinite, such as one ending in `.repeat()`, skips that check.)

    The iterator is available as `train_iterator` and is trackable: put it in your
    `tf.train.Checkpoint` to save the input position with the model, so a restarted job
    resumes mid-epoch where the checkpoint was taken.
    """

    def __init__(self, train_dataset: Any, options: StandardTrainerOptions | None = None):
        """Initializes the trainer.

        Args:
          train_dataset: A `tf.data.Dataset`, a `tf.distribute.DistributedDataset`, or a
            nested structure of them (then `train_step` receives the matching structure of
            iterators, and the end of the data is not detected).
          options: How to build the loop; defaults to `StandardTrainerOptions()`.
        """
        self._train_options = options or StandardTrainerOptions()
        self._train_dataset = train_dataset
        self._train_iter = None
        self._train_loop_fn = None

    @property
    def train_dataset(self) -> Any:
        """The training dataset. Setting it starts a new iterator on the next loop."""
        return self._train_dataset

    @train_dataset.setter
    def train_dataset(self, dataset: Any) -> None:
        self._train_dataset = dataset
        self._train_iter = None
        self._train_loop_fn = None  # The new dataset may end where the old one could not.

    @property
    def train_iterator(self) -> Any:
        """The iterator over `train_dataset` that training reads from (created on first use)."""
        if self._train_iter is None:
            self._train_iter = _create_iterator(self._train_dataset)
        return self._train_iter

    def create_train_loop_fn(self):
        """Builds the loop function `loop_fn(iterator, num_steps)` from the options."""
        options = self._train_options
        # An endless dataset cannot run out, so it needs no end-of-data check per step.
        guarded = loop_fns.supports_guarded_loops(self.train_iterator) and not (
            loop_fns.is_infinite(self._train_dataset)
        )
        if options.use_tf_while_loop:
            if guarded:
                loop_fn = loop_fns.create_guarded_tf_while_loop_fn(self.train_step)
            else:
                loop_fn = loop_fns.create_tf_while_loop_fn(self.train_step)
        elif guarded:
            loop_fn = loop_fns.create_guarded_loop_fn(
                self.train_step, use_tf_function=options.use_tf_function
            )
        else:
            step = tf.function(self.train_step) if options.use_tf_function else self.train_step
            loop_fn = loop_fns.create_loop_fn(step)
        if options.use_tf_while_loop:
            if options.use_tpu_summary_optimization:
                return LoopFnWithSummaries(loop_fn)
            return tf.function(loop_fn)
        return loop_fn

    def train(self, num_steps: tf.Tensor) -> runner.Output | None:
        """Runs up to `num_steps` training steps (fewer if the data ends) and returns the output.

        Args:
          num_steps: The number of steps to run, as a scalar int32 tensor.

        Returns:
          The value returned by `train_loop_end`.
        """
        self.train_loop_begin()
        iterator = self.train_iterator
        if self._train_loop_fn is None:
            self._train_loop_fn = self.create_train_loop_fn()
        self._train_loop_fn(iterator, num_steps)
        return self.train_loop_end()

    def train_loop_begin(self) -> None:
        """Called before each loop of steps, eagerly (e.g. to reset metrics)."""

    @abc.abstractmethod
    def train_step(self, iterator: Any) -> None:
        """Runs one training step: reads `next(iterator)` and updates the model.

        Under a distribution strategy, call `strategy.run(replica_fn, args=(next(iterator),))`
        here. Outputs are not collected: accumulate what `train_loop_end` reports in
        variables or metrics.

        Args:
          iterator: The dataset iterator (or nested structure of iterators).
        """

    def train_loop_end(self) -> runner.Output | None:
        """Called after each loop of steps, eagerly; returns the loop's output."""
        return None


@dataclasses.dataclass(frozen=True)
class StandardEvaluatorOptions:
    """How a `StandardEvaluator` builds its evaluation loop.

    Attributes:
      use_tf_function: Compile the evaluation step (or the whole loop) with `tf.function`.
      use_tf_while_loop: Run the loop inside the graph. The state that `eval_reduce`
        folds outputs into must then be tensors. With a single dataset, evaluation until
        the data ends (`num_steps=-1`) works in this mode too.
      recreate_iterator_for_each_eval: Start each evaluation from the beginning of the
        dataset. Turn it off to continue where the previous evaluation stopped (for an
        infinite dataset evaluated a fixed number of steps at a time). When on, each
        evaluation's iterator is destroyed on a background thread after the evaluation
        (see `garden_orbit.utils.release_in_background`): destroying an autotuned
        iterator can block for up to a minute inside TensorFlow.
    """

    use_tf_function: bool = True
    use_tf_while_loop: bool = False
    recreate_iterator_for_each_eval: bool = True

    def __post_init__(self):
        if self.use_tf_while_loop and not self.use_tf_function:
            raise ValueError(
                "StandardEvaluatorOptions: use_tf_while_loop=True needs use_tf_function=True."
            )


class StandardEvaluator(runner.AbstractEvaluator, metaclass=abc.ABCMeta):
    """An evaluator that iterates over a dataset and calls `eval_step` for each step.

    Subclasses implement `eval_step(iterator)` and may override `eval_begin`, `eval_reduce`
    (to accumulate step outputs on the host, e.g. predictions for COCO metrics) and
    `eval_end` (whose return value is the evaluation output).
    """

    def __init__(self, eval_dataset: Any, options: StandardEvaluatorOptions | None = None):
        """Initializes the evaluator.

        Args:
          eval_dataset: A `tf.data.Dataset`, a `tf.distribute.DistributedDataset`, or a
            nested structure of them.
          options: How to build the loop; defaults to `StandardEvaluatorOptions()`.
        """
        self._eval_options = options or StandardEvaluatorOptions()
        self._eval_dataset = eval_dataset
        self._eval_iter = None
        self._eval_loop_fn = None

    @property
    def eval_dataset(self) -> Any:
        """The evaluation dataset. Setting it starts a new iterator on the next evaluation."""
        return self._eval_dataset

    @eval_dataset.setter
    def eval_dataset(self, dataset: Any) -> None:
        self._eval_dataset = dataset
        self._eval_iter = None

    def create_eval_loop_fn(self, has_state: bool):
        """Builds `loop_fn(iterator, num_steps, state=None, reduce_fn=None)` from the options.

        Args:
          has_state: Whether `eval_begin` returned a state to fold outputs into (the
            in-graph loop carries it as loop variables).
        """
        options = self._eval_options
        if options.use_tf_while_loop:
            if has_state:
                return tf.function(loop_fns.create_tf_while_loop_fn_with_state(self.eval_step))
            while_fn = tf.function(_stateless_eval_loop(self.eval_step))

            def loop_fn(iterator, num_steps, state=None, reduce_fn=None):
                while_fn(iterator, num_steps)
                return state

            return loop_fn
        if loop_fns.supports_guarded_loops(self._eval_iter):
            return loop_fns.create_guarded_loop_fn(
                self.eval_step, use_tf_function=options.use_tf_function, collect_outputs=True
            )
        step = tf.function(self.eval_step) if options.use_tf_function else self.eval_step
        return loop_fns.create_loop_fn(step)

    def evaluate(self, num_steps: tf.Tensor) -> runner.Output | None:
        """Runs `num_steps` evaluation steps (-1: the whole dataset) and returns the results.

        Args:
          num_steps: The number of steps, as a scalar int32 tensor; -1 runs until the data
            is exhausted.

        Returns:
          The value returned by `eval_end`.
        """
        state = self.eval_begin()
        if self._eval_iter is None or self._eval_options.recreate_iterator_for_each_eval:
            self._eval_iter = _create_iterator(self._eval_dataset)
        if (
            self._eval_options.use_tf_while_loop
            and int(num_steps) == -1
            and not loop_fns.supports_guarded_loops(self._eval_iter)
        ):
            raise ValueError(
                "StandardEvaluator: evaluating until the data ends (num_steps=-1) with "
                "use_tf_while_loop=True needs a single dataset; with a nested structure of "
                "datasets pass a number of steps or set use_tf_while_loop=False."
            )
        if self._eval_loop_fn is None:
            self._eval_loop_fn = self.create_eval_loop_fn(has_state=state is not None)
        try:
            state = self._eval_loop_fn(
                self._eval_iter, num_steps, state=state, reduce_fn=self.eval_reduce
            )
        finally:
            if self._eval_options.recreate_iterator_for_each_eval:
                # Never destroyed here: that can block for up to a minute (see the option).
                # `del` also drops the reference a tf.Module keeps as a checkpoint dependency.
                iterators = [self._eval_iter]
                del self._eval_iter
                self._eval_iter = None
                release_in_background(iterators)
        if state is None:
            return self.eval_end()
        return self.eval_end(state)

    def eval_begin(self) -> Any:
        """Called before each evaluation; may return the initial state for `eval_reduce`."""
        return None

    @abc.abstractmethod
    def eval_step(self, iterator: Any) -> Any:
        """Runs one evaluation step and returns outputs for `eval_reduce` (or None).

        Args:
          iterator: The dataset iterator (or nested structure of iterators).
        """

    def eval_end(self, *args: Any) -> runner.Output | None:
        """Called after each evaluation with the reduced state (if any); returns the results."""
        return None

    def eval_reduce(self, state: Any = None, step_outputs: Any = None) -> Any:
        """Folds one step's outputs into the state; by default keeps the state unchanged."""
        return state


def _stateless_eval_loop(step_fn):
    """An in-graph evaluation loop without state; -1 runs to the end of a single dataset."""
    guarded = loop_fns.create_guarded_tf_while_loop_fn(step_fn)
    plain = loop_fns.create_tf_while_loop_fn(step_fn)

    def loop_fn(iterator, num_steps):
        if loop_fns.supports_guarded_loops(iterator):
            guarded(iterator, num_steps)
        else:
            plain(iterator, num_steps)

    return loop_fn
