"""Provides `SaveCheckpointIfPreempted`, which saves a checkpoint when a preemption is coming.

The action wraps TensorFlow's `tf.distribute.experimental.PreemptionCheckpointHandler`.
The handler watches for a termination notice (SIGTERM by default, a platform-specific
watcher on Borg and GCP, or a `termination_watcher_fn` of your own); used as a train action,
this action asks the handler after every inner train loop to save a checkpoint if a notice
has arrived, and then to exit the program (or to keep running).

Behaviour of the TensorFlow handler worth knowing, in a single process as in a cluster:

* Creating it restores the latest checkpoint of the checkpoint manager (or runs the
  manager's `init_fn` if there is none), and adds a `checkpointed_runs` counter variable to
  the manager's checkpoint.
* It detects the platform when created by querying the GCE metadata server
  (`metadata.google.internal`, overridable through the `GCE_METADATA_IP` environment
  variable); where that host does not resolve this is quick, where it is unreachable it
  can take up to five seconds.
* Without a `termination_watcher_fn` (and off GCP) it installs a SIGTERM handler, which
  Python allows only in the main thread; with one, it polls it from a background thread
  about once a second.
* It saves at the call after the one that first sees the notice (all workers agree on that
  step), then calls `exit_fn` when there is no grace period; the default `exit_fn` off GCP is
  `sys.exit(42)`. With a positive `grace_period` it keeps training, saves once more near the
  end of the grace period, and only then exits.
* It runs with the default strategy, `OneDeviceStrategy`, `MirroredStrategy` and
  `MultiWorkerMirroredStrategy` (one or several workers), and with `TPUStrategy`; it does not
  support `ParameterServerStrategy`.
"""

from __future__ import annotations

from typing import Any

from absl import logging

from garden_orbit import runner
from garden_orbit._tensorflow import tf


def _keep_running() -> None:
    """The exit function used with `keep_running_after_save=True`: only logs."""
    logging.info("SaveCheckpointIfPreempted: preemption checkpoint saved; the job keeps running.")


class SaveCheckpointIfPreempted:
    """An action that saves a checkpoint on demand when a preemption notice arrives.

    Give it to the Controller as a train action:

        preemption_action = orbit.actions.SaveCheckpointIfPreempted(
            strategy.cluster_resolver, checkpoint_manager, checkpoint_number=global_step)
        controller = orbit.Controller(..., train_actions=[preemption_action])

    Create it in the main thread (the default watcher installs a SIGTERM handler), after the
    variables it should save exist, and keep in mind that creating it restores the latest
    checkpoint of `checkpoint_manager`.
    """

    def __init__(
        self,
        cluster_resolver: tf.distribute.cluster_resolver.ClusterResolver | None,
        checkpoint_manager: tf.train.CheckpointManager,
        checkpoint_number: tf.Variable | int | None = None,
        keep_running_after_save: bool = False,
        *,
        termination_config: tf.distribute.experimental.TerminationConfig | None = None,
    ):
        """Initializes the instance and starts watching for a termination notice.

        Args:
          cluster_resolver: The cluster resolver of the distribution strategy, usually
            `strategy.cluster_resolver`; None (what single-machine strategies have) means a
            single worker.
          checkpoint_manager: The `tf.train.CheckpointManager` to save the checkpoint with.
          checkpoint_number: The number to give the checkpoint, usually the global step
            variable (read when the checkpoint is saved). If None, the checkpoint manager
            numbers it.
          keep_running_after_save: If True, the program keeps running after the checkpoint
            is saved instead of exiting. Use it only when something else recovers from the
            preemption in-process (for example
            `tf.distribute.experimental.PreemptionWatcher`). The handler stops watching
            after its final save, so it handles a single preemption notice.
          termination_config: An optional `tf.distribute.experimental.TerminationConfig`
            passed to the handler, to set how a notice is detected
            (`termination_watcher_fn`), how the program exits (`exit_fn`), the
            `grace_period` and the `save_fn`. Fields left None keep the platform defaults.

        Raises:
          ValueError: If `keep_running_after_save` is True and `termination_config` also sets
            an `exit_fn`.
        """
        if keep_running_after_save:
            if termination_config is not None and termination_config.exit_fn is not None:
                raise ValueError(
                    "SaveCheckpointIfPreempted: keep_running_after_save=True replaces the exit "
                    "function, so termination_config must not set exit_fn."
                )
            base = termination_config or tf.distribute.experimental.TerminationConfig()
            termination_config = tf.distribute.experimental.TerminationConfig(
                termination_watcher_fn=base.termination_watcher_fn,
                exit_fn=_keep_running,
                grace_period=base.grace_period,
                save_fn=base.save_fn,
            )
        self._checkpoint_manager = checkpoint_manager
        self._checkpoint_number = checkpoint_number
        self._keep_running_after_save = keep_running_after_save
        self._termination_config = termination_config
        self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            cluster_resolver, checkpoint_manager, termination_config=termination_config
        )

    @property
    def preemption_handler(self) -> tf.distribute.experimental.PreemptionCheckpointHandler:
        """The TensorFlow `PreemptionCheckpointHandler` this action drives."""
        return self._handler

    @property
    def checkpoint_manager(self) -> tf.train.CheckpointManager:
        """The checkpoint manager the preemption checkpoint is saved with."""
        return self._checkpoint_manager

    def __call__(self, output: runner.Output) -> None:
        """Saves a checkpoint (and exits, unless told otherwise) if a preemption is coming.

        Args:
          output: The train output of the inner loop that just finished (unused).
        """
        del output  # Whether to save depends only on the termination notice.
        kwargs: dict[str, Any] = {}
        if self._checkpoint_number is not None:
            kwargs["checkpoint_number"] = self._checkpoint_number
        self._handler.save_checkpoint_if_preempted(**kwargs)
