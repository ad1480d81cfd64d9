"""Benchmark of garden-core's training runtime: the framework's cost per training step.

Run with `nox -s bench` (or `python benchmarks/runtime_bench.py` where garden-core is
installed). It prints a Markdown table; benchmarks/README.md records the numbers.

For each model size, the `mock` experiment is trained twice:

1. Through `run_experiment` (mode `train`), as `garden train` runs it: the Orbit controller
   and trainer, `steps_per_loop` steps per `tf.while_loop`, training loss and accuracy
   metrics, a learning-rate summary and `metrics.jsonl` after every loop. Steps per second
   are read from the `metrics.jsonl` timestamps, from the end of the first loop (which
   includes tracing) to the end of the last.
2. In a bare loop: the same model, optimizer, loss and input pipeline, with a `tf.function`
   that runs `steps_per_loop` steps in a `tf.range` loop, called from Python. It is timed
   with and without updating the same two metrics as the framework.

The ratio framework / bare loop is the framework's overhead (1.00 = none).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import tempfile
import time

SIZES = {
    # The `mock` experiment as shipped: an 8-16-4 MLP, batch 32 (about 0.2 ms a step).
    "tiny (mock defaults)": "",
    # Enough compute per step that the step, not the loop, dominates (a few ms a step).
    "medium (256-1024-1024-10, batch 256)": (
        "task.model.input_size=256,task.model.hidden_size=1024,task.model.num_hidden_layers=2,"
        "task.model.num_classes=10,task.train_data.global_batch_size=256,"
        "task.train_data.num_examples=4096"
    ),
}


def _params(overrides: str, steps: int, steps_per_loop: int):
    from garden_core import experiment_factory
    from garden_core.config import override_config

    params = experiment_factory.get_experiment_config("mock")
    loop = (
        f"trainer.train_steps={steps},trainer.steps_per_loop={steps_per_loop},"
        f"trainer.summary_interval={steps_per_loop},trainer.checkpoint_interval={steps},"
        "trainer.best_checkpoint_export_subdir='',runtime.seed=0"
    )
    override_config(params, [], ",".join(o for o in (overrides, loop) if o))
    return params


def framework_steps_per_second(overrides: str, steps: int, steps_per_loop: int) -> float:
    import tensorflow as tf

    from garden_core import task_factory, train_lib

    params = _params(overrides, steps, steps_per_loop)
    with tempfile.TemporaryDirectory() as model_dir:
        task = task_factory.get_task(params.task)
        with contextlib.redirect_stdout(io.StringIO()):  # The per-loop lines, as a log has.
            train_lib.run_experiment(
                tf.distribute.get_strategy(), task, "train", params, model_dir, show_progress=False
            )
        with open(os.path.join(model_dir, "metrics.jsonl")) as f:
            records = [json.loads(line) for line in f]
    train = [r for r in records if r["mode"] == "train"]
    first, last = train[0], train[-1]
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def bare_steps_per_second(
    overrides: str, steps: int, steps_per_loop: int, with_metrics: bool
) -> float:
    import keras
    import tensorflow as tf

    from garden_core import task_factory

    params = _params(overrides, steps, steps_per_loop)
    keras.utils.set_random_seed(0)
    task = task_factory.get_task(params.task)
    model = task.build_model()
    optimizer = task.create_optimizer(params.trainer.optimizer_config)
    optimizer.build(model.trainable_variables)
    loss_mean = keras.metrics.Mean()
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    iterator = iter(task.build_inputs(params.task.train_data))

    @tf.function
    def train_loop(iterator):
        for _ in tf.range(steps_per_loop):
            features, labels = next(iterator)
            with tf.GradientTape() as tape:
                outputs = model(features, training=True)
                loss = task.build_losses(labels, outputs)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            if with_metrics:
                loss_mean.update_state(loss)
                accuracy.update_state(labels, outputs)

    train_loop(iterator)  # Trace and warm up (the framework's first loop is not timed).
    loops = steps // steps_per_loop - 1
    start = time.perf_counter()
    for _ in range(loops):
        train_loop(iterator)
        if with_metrics:
            loss_mean.result().numpy(), accuracy.result().numpy()
            loss_mean.reset_state()
            accuracy.reset_state()
    return loops * steps_per_loop / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps_per_loop", type=int, default=100)
    parser.add_argument("--tiny_steps", type=int, default=20000)
    parser.add_argument("--medium_steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    steps = {"tiny": args.tiny_steps, "medium": args.medium_steps}

    print(f"\n### Training-step overhead (steps_per_loop={args.steps_per_loop}, median of "
          f"{args.repeats})\n")  # fmt: skip
    print("| model | framework steps/s | bare steps/s | bare + metrics steps/s "
          "| framework / bare | framework / bare + metrics |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, overrides in SIZES.items():
        n = steps[label.split()[0]]
        rates: dict[str, list[float]] = {"framework": [], "bare": [], "metrics": []}
        for _ in range(args.repeats):  # Interleaved, so drifts in machine load hit all three.
            rates["framework"].append(framework_steps_per_second(overrides, n, args.steps_per_loop))
            rates["bare"].append(bare_steps_per_second(overrides, n, args.steps_per_loop, False))
            rates["metrics"].append(bare_steps_per_second(overrides, n, args.steps_per_loop, True))
        median = {key: statistics.median(values) for key, values in rates.items()}
        print(
            f"| {label} | {median['framework']:.0f} | {median['bare']:.0f} "
            f"| {median['metrics']:.0f} | {median['framework'] / median['bare']:.3f} "
            f"| {median['framework'] / median['metrics']:.3f} |"
        )


if __name__ == "__main__":
    main()
