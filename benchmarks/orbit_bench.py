"""Benchmarks for garden-orbit: import cost and inner-loop throughput.

Run with `nox -s bench` (or `python benchmarks/orbit_bench.py` where garden-orbit is
installed). It prints a Markdown table; benchmarks/README.md records the numbers.

1. Import: wall time and modules loaded by `import tensorflow` and by `import garden_orbit`
   in fresh interpreters (median of several runs).
2. Inner loop: training steps per second of a `StandardTrainer` on a small MLP over a finite
   dataset, comparing the guarded loops garden-orbit uses there (which check for the next
   element before each step so they stop cleanly at the end of the data) with plain loops
   that do not check (what garden-orbit uses for an infinite dataset, and what Orbit uses).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PROBE = (
    "import sys, time; t = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - t, len(sys.modules), "
    "sum(1 for m in sys.modules if m == 'keras' or m.startswith('keras.')))"
)


def bench_import(module: str, runs: int) -> dict:
    seconds, modules, keras_modules = [], 0, 0
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
            env={"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PATH": ""},
        ).stdout.split()
        seconds.append(float(out[0]))
        modules, keras_modules = int(out[1]), int(out[2])
    return {
        "module": module,
        "median_s": statistics.median(seconds),
        "modules": modules,
        "keras_modules": keras_modules,
    }


def bench_loops(steps: int, steps_per_loop: int, repeats: int) -> list[dict]:
    import garden_orbit as orbit
    from garden_orbit._tensorflow import tf

    def make_trainer(guarded: bool, while_loop: bool):
        tf.random.set_seed(0)
        x = tf.random.normal([4096, 64])
        y = tf.random.normal([4096, 1])
        # Finite (12,800 batches), so the guarded trainer really checks for the end of data.
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64).repeat(200).prefetch(4)
        layers = [
            tf.Variable(tf.random.normal([64, 128]) * 0.1),
            tf.Variable(tf.random.normal([128, 1]) * 0.1),
        ]
        step_var = orbit.utils.create_global_step()

        class Trainer(orbit.StandardTrainer):
            global_step = step_var

            def train_step(self, iterator):
                features, targets = next(iterator)
                with tf.GradientTape() as tape:
                    hidden = tf.nn.relu(features @ layers[0])
                    loss = tf.reduce_mean(tf.square(hidden @ layers[1] - targets))
                for var, grad in zip(layers, tape.gradient(loss, layers), strict=True):
                    var.assign_sub(0.01 * grad)
                step_var.assign_add(1)

            def create_train_loop_fn(self):
                if guarded:
                    return super().create_train_loop_fn()
                if while_loop:
                    return tf.function(orbit.utils.create_tf_while_loop_fn(self.train_step))
                return orbit.utils.create_loop_fn(tf.function(self.train_step))

        options = orbit.StandardTrainerOptions(use_tf_while_loop=while_loop)
        return Trainer(dataset, options)

    results = []
    for while_loop in (True, False):
        for guarded in (True, False):
            trainer = make_trainer(guarded, while_loop)
            trainer.train(tf.constant(steps_per_loop))  # Trace and warm up.
            rates = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(steps // steps_per_loop):
                    trainer.train(tf.constant(steps_per_loop))
                rates.append(steps / (time.perf_counter() - start))
            results.append(
                {
                    "loop": "tf.while_loop" if while_loop else "Python loop + tf.function step",
                    "guarded": guarded,
                    "steps_per_s": statistics.median(rates),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--steps-per-loop", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    imports = [bench_import(m, args.import_runs) for m in ("tensorflow", "garden_orbit")]
    loops = bench_loops(args.steps, args.steps_per_loop, args.repeats)

    print("\n| import | median wall time (s) | modules loaded | keras modules |")
    print("|---|---|---|---|")
    for r in imports:
        print(f"| `{r['module']}` | {r['median_s']:.2f} | {r['modules']} | {r['keras_modules']} |")
    print("\n| inner loop | guarded | steps/s (median) |")
    print("|---|---|---|")
    for r in loops:
        print(f"| {r['loop']} | {'yes' if r['guarded'] else 'no'} | {r['steps_per_s']:.0f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"imports": imports, "loops": loops}, f, indent=2)


if __name__ == "__main__":
    main()
