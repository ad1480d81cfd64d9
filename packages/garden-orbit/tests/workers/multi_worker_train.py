"""One worker of a two-process MultiWorkerMirroredStrategy training run (used by tests).

Usage: multi_worker_train.py TASK_INDEX PORT0,PORT1 OUT_DIR STEPS
Writes OUT_DIR/worker_TASK_INDEX/weights.npy and summaries under .../train.
"""

import json
import os
import sys

task_index, ports, out_dir, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports.split(",")]},
        "task": {"type": "worker", "index": int(task_index)},
    }
)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import orbit_testing as ot  # noqa: E402

import garden_orbit as orbit  # noqa: E402
from garden_orbit._tensorflow import tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
with strategy.scope():
    dataset = orbit.utils.make_distributed_dataset(strategy, ot.regression_dataset())
    trainer = ot.RegressionTrainer(dataset)
worker_dir = os.path.join(out_dir, f"worker_{task_index}")
controller = orbit.Controller(
    trainer=trainer,
    global_step=trainer.global_step,
    strategy=strategy,
    steps_per_loop=2,
    summary_dir=os.path.join(worker_dir, "train"),
    show_progress=False,
)
controller.train(steps=steps)
np.save(os.path.join(worker_dir, "weights.npy"), trainer.model.weights())
