"""A deterministic training run that checkpoints its data iterator (used by tests).

Usage: resumable_train.py MODEL_DIR OUT_WEIGHTS [KILL_AT_STEP]
Trains a linear model for 3 shuffled epochs of 12 steps until the data is exhausted, with a
checkpoint (model, step and iterator position) every 5 steps. With KILL_AT_STEP, the process
sends itself SIGKILL when the global step reaches it, as a crash would.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import orbit_testing as ot  # noqa: E402

import garden_orbit as orbit  # noqa: E402
from garden_orbit._tensorflow import tf  # noqa: E402

model_dir, out_weights = sys.argv[1], sys.argv[2]
kill_at = int(sys.argv[3]) if len(sys.argv) > 3 else None

tf.config.experimental.enable_op_determinism()
tf.random.set_seed(1)
dataset = ot.regression_dataset(96, batch_size=8, repeat=False, shuffle_seed=7).repeat(3)
trainer = ot.RegressionTrainer(dataset, learning_rate=0.05)
checkpoint = tf.train.Checkpoint(
    model=trainer.model, global_step=trainer.global_step, train_iterator=trainer.train_iterator
)
manager = tf.train.CheckpointManager(
    checkpoint, model_dir, max_to_keep=2, step_counter=trainer.global_step, checkpoint_interval=5
)


def kill_switch(output):
    if kill_at is not None and int(trainer.global_step.numpy()) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


controller = orbit.Controller(
    trainer=trainer,
    global_step=trainer.global_step,
    steps_per_loop=1,
    checkpoint_manager=manager,
    train_actions=[kill_switch],
    show_progress=False,
)
print(f"starting at step {int(trainer.global_step.numpy())}", flush=True)
controller.train()
print(f"finished at step {int(trainer.global_step.numpy())}", flush=True)
np.save(out_weights, trainer.model.weights())
