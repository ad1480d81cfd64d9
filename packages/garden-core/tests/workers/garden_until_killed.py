"""Runs the `garden` command in this process and dies with SIGKILL part-way (used by tests).

Usage:
    garden_until_killed.py [--logical_cpus M] --kill_after_step N -- GARDEN_ARGS...
    garden_until_killed.py --kill_after_export_write -- GARDEN_ARGS...
    garden_until_killed.py [--logical_cpus M] -- GARDEN_ARGS...

`--kill_after_step N`: `garden train` on the `mock` experiment sends itself SIGKILL from
inside the compiled training loop when training step N + 1 starts, i.e. with N steps done
and whatever was not checkpointed yet lost, as a crash or an out-of-memory kill would. The
kill switch is a task registered in-process for `MockTaskConfig` (replacing the built-in
`MockTask` through `registry.tasks.register(..., override=True)`) whose training step also
runs a `tf.py_function` that reads the optimizer's step counter; the arithmetic of training
is untouched, so up to the kill the run is the one `garden train` makes.

`--kill_after_export_write`: `garden export` sends itself SIGKILL as soon as
`tf.saved_model.save` has written the SavedModel into the export's temporary directory,
before it is renamed into place.

`--logical_cpus M`: splits the CPU into M logical devices before TensorFlow's runtime
starts (it takes them only then), so `mirrored` has M replicas. `TF_CONFIG` (for
`multi_worker_mirrored`) comes from the environment; under it every worker is given the same
kill switch, and the workers die at the same step.

Without a kill switch the command just runs. The exit status is the command's; a killed
process has none (the parent sees -SIGKILL).
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install_step_kill_switch(kill_after_step: int) -> None:
    import tensorflow as tf

    from garden_core import registry
    from garden_core.experiments.mock_task import MockTask

    def maybe_die(steps_done: tf.Tensor) -> None:
        if int(steps_done) == kill_after_step:
            print(f"killing myself with {kill_after_step} steps done", flush=True)
            _die()

    class MockTaskKilledMidRun(MockTask):
        """`MockTask` whose training step kills the process once the given step is reached."""

        def train_step(self, inputs, model, optimizer, metrics=None):
            # The counter is read before this step's update, so it counts the steps done.
            tf.py_function(maybe_die, [optimizer.iterations], [])
            return super().train_step(inputs, model, optimizer, metrics=metrics)

    registry.tasks.register("MockTaskConfig", MockTaskKilledMidRun, override=True)


def _split_cpu(count: int) -> None:
    import tensorflow as tf

    # Physical devices can be listed without starting the runtime (which would make both
    # this call and MultiWorkerMirroredStrategy's setup of collective ops fail).
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count
    )


def _install_export_kill_switch() -> None:
    import tensorflow as tf

    save = tf.saved_model.save

    def save_then_die(obj, export_dir, *args, **kwargs):
        save(obj, export_dir, *args, **kwargs)
        print(f"killing myself after writing {export_dir}", flush=True)
        _die()

    # `export_base.export` looks `tf.saved_model.save` up when it runs, so it gets this one.
    tf.saved_model.save = save_then_die


def main(argv: list[str]) -> int:
    if "--" not in argv:
        raise SystemExit(
            "usage: garden_until_killed.py [--logical_cpus M] [--kill_after_step N | "
            "--kill_after_export_write] -- GARDEN_ARGS..."
        )
    split = argv.index("--")
    options, garden_args = argv[:split], argv[split + 1 :]
    if options[:1] == ["--logical_cpus"] and len(options) >= 2:
        _split_cpu(int(options[1]))
        options = options[2:]
    if options[:1] == ["--kill_after_step"] and len(options) == 2:
        _install_step_kill_switch(int(options[1]))
    elif options == ["--kill_after_export_write"]:
        _install_export_kill_switch()
    elif options:
        raise SystemExit(f"unknown options: {options}")

    from garden_core import cli

    return cli.main(garden_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
