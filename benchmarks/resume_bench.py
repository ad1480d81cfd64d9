"""Benchmark of what saving the training-data position costs a checkpoint, and a resume.

Run with `nox -s bench` (or `python benchmarks/resume_bench.py` where garden-core is
installed). It prints a Markdown table; benchmarks/README.md records the numbers.

For each strategy (`off`, `one_device`, `mirrored` over two logical CPUs) and model size, the
`mock` experiment's `Trainer` trains to the middle of an epoch, then, in the same process
and alternately, writes its checkpoint with the data position (`trainer.checkpoint`) and
without it (the same objects less `train_iterator` / `train_data_position`). The table gives
the median write time and the size of the written files of both, and the differences.

- `off` saves the state of the plain `tf.data` iterator: the mock pipeline's shuffle buffer
  holds the whole training set, so this is the cost of a large buffer.
- `one_device` and `mirrored` save the number of batches drawn (one int64) and pay on
  resume instead: a new trainer restored from the checkpoint fast-forwards its iterator by
  that many batches. The `resume` column is that fast-forward's time per batch, next to the
  time of a training step (`step`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = {
    "tiny (mock defaults)": "",
    "medium (256-1024-1024-10, batch 256)": (
        "task.model.input_size=256,task.model.hidden_size=1024,task.model.num_hidden_layers=2,"
        "task.model.num_classes=10,task.train_data.global_batch_size=256,"
        "task.train_data.num_examples=4096"
    ),
}
STRATEGIES = ("off", "one_device", "mirrored")
DATA_POSITION = ("train_iterator", "train_data_position")


def _params(overrides: str, strategy: str):
    from garden_core import experiment_factory
    from garden_core.config import override_config

    params = experiment_factory.get_experiment_config("mock")
    run = (
        f"runtime.distribution_strategy={strategy},runtime.seed=0,"
        "trainer.best_checkpoint_export_subdir=''"
    )
    override_config(params, [], ",".join(o for o in (overrides, run) if o))
    return params


def _files_size(prefix: str) -> int:
    directory, name = os.path.split(prefix)
    return sum(
        os.path.getsize(os.path.join(directory, f))
        for f in os.listdir(directory)
        if f.startswith(name + ".")
    )


def _trainer(params):
    import keras

    from garden_core import distribute_utils, task_factory, train_utils

    strategy = distribute_utils.strategy_from_runtime(params.runtime)
    keras.utils.set_random_seed(params.runtime.seed)
    task = task_factory.get_task(params.task)
    with strategy.scope():
        return train_utils.create_trainer(params, task, train=True, evaluate=False)


def measure(overrides: str, strategy: str, steps: int, writes: int) -> dict[str, float]:
    import tensorflow as tf

    params = _params(overrides, strategy)
    trainer = _trainer(params)
    trainer.train(tf.constant(steps, tf.int32))  # Mid-epoch (the data repeat forever).
    step_start = time.perf_counter()
    trainer.train(tf.constant(steps, tf.int32))
    trainer.global_step.numpy()
    step_s = (time.perf_counter() - step_start) / steps
    with_position = trainer.checkpoint
    without = tf.train.Checkpoint(
        global_step=trainer.global_step, model=trainer.model, optimizer=trainer.optimizer
    )
    results = {"with": [], "without": []}
    sizes = {}
    with tempfile.TemporaryDirectory() as directory:
        for index in range(writes + 1):  # Write 0 of each warms up (traces the savers).
            for name, checkpoint in (("with", with_position), ("without", without)):
                prefix = os.path.join(directory, f"{name}-{index}")
                start = time.perf_counter()
                checkpoint.write(prefix)
                elapsed = time.perf_counter() - start
                if index:
                    results[name].append(elapsed)
                sizes[name] = _files_size(prefix)
        resume_s = float("nan")
        if strategy != "off":
            # A resumed trainer fast-forwards by the saved count on its first use of data.
            # The first resume traces the fast-forward loop; the second is timed.
            path = with_position.write(os.path.join(directory, "resume"))
            for _ in range(2):
                resumed = _trainer(params)
                resumed.checkpoint.read(path).assert_consumed()
                position = int(resumed.train_data_position.numpy())
                start = time.perf_counter()
                resumed.train_iterator  # noqa: B018 (creating it fast-forwards)
                resume_s = (time.perf_counter() - start) / position
    return {
        "with_ms": 1e3 * statistics.median(results["with"]),
        "without_ms": 1e3 * statistics.median(results["without"]),
        "with_bytes": sizes["with"],
        "without_bytes": sizes["without"],
        "resume_ms": 1e3 * resume_s,
        "step_ms": 1e3 * step_s,
    }


def _measure_in_subprocess(size: str, strategy: str, args: argparse.Namespace) -> dict:
    """`measure` in a fresh interpreter: logical devices are set before TensorFlow starts,
    and no two strategies share one process's collective ops."""
    command = [sys.executable, __file__, "--steps", str(args.steps), "--writes", str(args.writes)]
    command += ["--one", size, strategy]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps before the checkpoint")
    parser.add_argument("--writes", type=int, default=10, help="timed writes of each kind")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "STRATEGY"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        import tensorflow as tf

        # Two logical CPUs for `mirrored`, set before TensorFlow's runtime starts.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        size, strategy = args.one
        print(json.dumps(measure(SIZES[size], strategy, args.steps, args.writes)))
        return

    print(
        "| strategy | model | saved as | checkpoint without / with | added | "
        "write without / with (ms) | added (ms) | resume per batch / step (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in SIZES:
        for strategy in STRATEGIES:
            r = _measure_in_subprocess(size, strategy, args)
            kind = "iterator state" if strategy == "off" else "batch count"
            resume = "-" if strategy == "off" else f"{r['resume_ms']:.3f} / {r['step_ms']:.3f}"
            print(
                f"| {strategy} | {size} | {kind} | {r['without_bytes']:,} / "
                f"{r['with_bytes']:,} B | {r['with_bytes'] - r['without_bytes']:+,} B | "
                f"{r['without_ms']:.2f} / {r['with_ms']:.2f} | "
                f"{r['with_ms'] - r['without_ms']:+.2f} | {resume} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
