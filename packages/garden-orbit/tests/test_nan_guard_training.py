"""NaNGuard in a real Controller run: a diverging run stops before any NaN is checkpointed."""

import numpy as np
import orbit_testing as ot
import pytest

import garden_orbit as orbit
from garden_orbit._tensorflow import tf


def _diverging_run(tmp_path, max_retries):
    trainer = ot.RegressionTrainer(ot.regression_dataset(), learning_rate=5.0)  # Diverges.
    checkpoint = tf.train.Checkpoint(model=trainer.model, global_step=trainer.global_step)
    manager = tf.train.CheckpointManager(
        checkpoint,
        str(tmp_path),
        max_to_keep=None,
        step_counter=trainer.global_step,
        checkpoint_interval=2,
    )
    guard = orbit.actions.NaNGuard(
        trainer.global_step,
        checkpoint_manager=manager if max_retries else None,
        max_retries=max_retries,
    )
    controller = orbit.Controller(
        trainer=trainer,
        global_step=trainer.global_step,
        steps_per_loop=2,
        checkpoint_manager=manager,
        train_actions=[guard],
        show_progress=False,
    )
    return controller, manager, guard


def test_nan_loss_stops_training_with_the_step_and_no_nan_checkpoint(tmp_path):
    controller, manager, _ = _diverging_run(tmp_path, max_retries=0)
    with pytest.raises(orbit.actions.NaNLossError, match=r"loss is (nan|inf).*global step \d+"):
        controller.train(steps=200)
    for path in manager.checkpoints:
        reader = tf.train.load_checkpoint(path)
        w = reader.get_tensor("model/w/.ATTRIBUTES/VARIABLE_VALUE")
        assert np.isfinite(w).all(), path


def test_nan_guard_retries_from_the_last_checkpoint_then_gives_up(tmp_path):
    controller, _, guard = _diverging_run(tmp_path, max_retries=2)
    with pytest.raises(orbit.actions.NaNLossError):
        controller.train(steps=200)
    assert guard.retries == 2
