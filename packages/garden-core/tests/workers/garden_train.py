"""Runs `garden train` in a fresh interpreter with N logical CPUs (used by test_distribution).

Usage: garden_train.py NUM_LOGICAL_CPUS REPLICAS_FILE GARDEN_TRAIN_ARGS...

TensorFlow takes logical device settings only before its runtime starts, hence a process of
its own: with two logical CPUs and no GPU, `mirrored` has two replicas. The number of
replicas of the strategy the CLI builds is written to REPLICAS_FILE as JSON
(`{"num_replicas_in_sync": n}`), so the test can tell which strategy really ran. The exit
status is the CLI's. `TF_CONFIG` (for `multi_worker_mirrored`) comes from the environment.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    num_cpus, replicas_file, garden_args = int(argv[0]), argv[1], argv[2:]

    import tensorflow as tf

    # Physical devices can be listed without starting the runtime (which would make both
    # this call and MultiWorkerMirroredStrategy's setup of collective ops fail).
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_cpus
    )

    from garden_core import cli, distribute_utils

    make_strategy = distribute_utils.strategy_from_runtime

    def recording_strategy_from_runtime(runtime):
        strategy = make_strategy(runtime)
        with open(replicas_file, "w") as f:
            json.dump({"num_replicas_in_sync": strategy.num_replicas_in_sync}, f)
        return strategy

    # The CLI looks the function up on the module when it runs, so it calls this wrapper.
    distribute_utils.strategy_from_runtime = recording_strategy_from_runtime
    return cli.main(["train", *garden_args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
