"""Tests for `garden_orbit.actions.SaveCheckpointIfPreempted`.

They drive TensorFlow's real `PreemptionCheckpointHandler` in this single process: the
handler runs in local mode (no cluster), with a termination notice either from a
`termination_watcher_fn` or from a real SIGTERM sent to this process.
"""

import importlib
import signal
import threading
import time

import pytest

from garden_orbit import actions
from garden_orbit._tensorflow import tf


@pytest.fixture(autouse=True)
def _no_gcp_probe(monkeypatch):
    """Skips the handler's GCE metadata-server request, so that the tests stay offline."""
    util = importlib.import_module(
        "tensorflow.python.distribute.failure_handling.failure_handling_util"
    )
    monkeypatch.setattr(util, "on_gcp", lambda: False)


@pytest.fixture
def restore_sigterm():
    """Restores this process's SIGTERM handler after a test that lets TF replace it."""
    previous = signal.getsignal(signal.SIGTERM)
    yield previous
    signal.signal(signal.SIGTERM, previous)


def _checkpointed(tmp_path, value=1.0):
    step = tf.Variable(0, dtype=tf.int64)
    weight = tf.Variable(value)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(step=step, weight=weight), str(tmp_path / "ckpt"), max_to_keep=3
    )
    return step, weight, manager


def _saved_value(path, name):
    return tf.train.load_variable(path, f"{name}/.ATTRIBUTES/VARIABLE_VALUE")


def _send_sigterm(previous_handler):
    # Only signal the process once TF's handler replaced the previous one; otherwise the
    # signal would end the test run.
    assert signal.getsignal(signal.SIGTERM) is not previous_handler
    signal.raise_signal(signal.SIGTERM)


def test_termination_watcher_fn_triggers_a_save_and_exit(tmp_path):
    step, weight, manager = _checkpointed(tmp_path)
    notice = threading.Event()
    exits = []
    config = tf.distribute.experimental.TerminationConfig(
        # Blocks until the notice (bounded, so that the watcher thread always ends).
        termination_watcher_fn=lambda: notice.wait(timeout=5.0),
        exit_fn=lambda: exits.append(int(step.numpy())),
        grace_period=0,
    )
    action = actions.SaveCheckpointIfPreempted(
        None, manager, checkpoint_number=step, termination_config=config
    )
    try:
        for _ in range(3):
            step.assign_add(10)
            action({"loss": 1.0})
        assert manager.latest_checkpoint is None
        assert exits == []

        notice.set()
        # The watcher thread reports the notice asynchronously; keep training until the
        # handler has saved and called exit_fn.
        deadline = time.monotonic() + 10.0
        while not exits and time.monotonic() < deadline:
            step.assign_add(10)
            weight.assign(float(step.numpy()))
            action({"loss": 1.0})
    finally:
        notice.set()

    assert len(exits) == 1
    saved_at = exits[0]
    assert manager.latest_checkpoint.endswith(f"ckpt-{saved_at}")
    assert _saved_value(manager.latest_checkpoint, "step") == saved_at
    assert _saved_value(manager.latest_checkpoint, "weight") == float(saved_at)


def test_sigterm_triggers_a_save_and_exit(tmp_path, restore_sigterm):
    step, _, manager = _checkpointed(tmp_path)
    exits = []
    config = tf.distribute.experimental.TerminationConfig(exit_fn=lambda: exits.append(True))
    action = actions.SaveCheckpointIfPreempted(None, manager, termination_config=config)
    step.assign(4)
    action(None)
    assert manager.latest_checkpoint is None

    _send_sigterm(restore_sigterm)
    for _ in range(3):  # The handler saves at the call after the one that sees the notice.
        if exits:
            break
        step.assign_add(1)
        action(None)

    assert exits == [True]
    # Without checkpoint_number, the checkpoint manager numbers the checkpoint itself.
    assert manager.checkpoints == [str(tmp_path / "ckpt" / "ckpt-1")]
    assert _saved_value(manager.latest_checkpoint, "step") == step.numpy()


def test_keep_running_after_save_with_mirrored_strategy(tmp_path, restore_sigterm):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        step, weight, manager = _checkpointed(tmp_path, value=2.0)
        action = actions.SaveCheckpointIfPreempted(
            strategy.cluster_resolver, manager, checkpoint_number=step, keep_running_after_save=True
        )
    step.assign(100)
    action(None)
    _send_sigterm(restore_sigterm)
    for _ in range(3):
        if manager.latest_checkpoint:
            break
        step.assign_add(1)
        action(None)

    saved = manager.latest_checkpoint
    assert saved is not None
    assert _saved_value(saved, "step") == step.numpy()
    # Training goes on (no exit), and the handler does not save again.
    for _ in range(3):
        step.assign_add(1)
        weight.assign_add(1.0)
        action(None)
    assert manager.checkpoints == [saved]


def test_creation_restores_the_latest_checkpoint(tmp_path, restore_sigterm):
    step, weight, manager = _checkpointed(tmp_path, value=3.0)
    step.assign(7)
    manager.save(checkpoint_number=7)
    step.assign(0)
    weight.assign(0.0)
    config = tf.distribute.experimental.TerminationConfig(exit_fn=lambda: None)
    actions.SaveCheckpointIfPreempted(None, manager, termination_config=config)
    assert step.numpy() == 7
    assert weight.numpy() == 3.0


def test_keep_running_conflicts_with_a_configured_exit_fn(tmp_path):
    _, _, manager = _checkpointed(tmp_path)
    config = tf.distribute.experimental.TerminationConfig(exit_fn=lambda: None)
    with pytest.raises(ValueError, match="must not set exit_fn"):
        actions.SaveCheckpointIfPreempted(
            None, manager, keep_running_after_save=True, termination_config=config
        )
