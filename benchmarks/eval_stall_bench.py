"""Benchmark: does every evaluation of a long `train_and_eval` run take as long as the others?

Run with `nox -s bench` (or `python benchmarks/eval_stall_bench.py` where garden-vision is
installed). It runs the Quickstart's training, `garden train --experiment
shapes_classification --mode train_and_eval` (six evaluations of the 1,000-image validation
split, one every four epochs), in a fresh process, reads each evaluation's wall time from
the Controller's ` eval | step: N | eval time: T sec` lines, and prints them with the longest
and the median.

The first evaluation also traces the evaluation step, so the ratio that matters is the
longest of the later evaluations over their median: about 1 when no evaluation stalls. (A
stall used to come from destroying the previous evaluation's dataset iterator on the
training thread, which can wait inside TensorFlow for up to a minute; see
`garden_orbit.utils.release_in_background`.)

On a busy machine evaluations also slow down when other processes take the CPU: compare
evaluations of one run with each other, not across runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

EVAL_LINE = re.compile(r"eval \| step:\s*(\d+) \| eval time:\s*([0-9.]+) sec")
# Run the CLI from this interpreter, so that PYTHONPATH and the current environment apply.
CLI = "import sys; from garden_core.cli import run; sys.exit(run())"
SPLITS = ("train_data", "validation_data")


def run_quickstart_training(data_dir: str, model_dir: str, extra_overrides: str) -> list:
    """Trains shapes_classification with train_and_eval; returns [(step, eval seconds)]."""
    overrides = ",".join(f"task.{split}.tfds_data_dir={data_dir}" for split in SPLITS)
    if extra_overrides:
        overrides += "," + extra_overrides
    command = [sys.executable, "-c", CLI, "train", "--experiment", "shapes_classification"]
    command += ["--mode", "train_and_eval", "--model_dir", model_dir]
    command += ["--params_override", overrides]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"garden train failed ({result.returncode}):\n{result.stderr[-4000:]}")
    evaluations = [(int(s), float(t)) for s, t in EVAL_LINE.findall(result.stdout)]
    if not evaluations:
        sys.exit(f"no evaluation lines in the output of garden train:\n{result.stdout[-4000:]}")
    print(f"training and evaluation took {time.monotonic() - start:.0f} s")
    return evaluations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data_dir",
        default=None,
        help="where garden_shapes is (or is generated); default: a temporary directory",
    )
    parser.add_argument(
        "--params_override",
        default="",
        help="extra overrides, e.g. trainer.train_steps=936 for a shorter run",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        data_dir = args.data_dir or os.path.join(work, "tensorflow_datasets")
        evaluations = run_quickstart_training(
            data_dir, os.path.join(work, "model"), args.params_override
        )
    print("\n| evaluation | step | wall time (s) |\n|---|---|---|")
    for number, (step, seconds) in enumerate(evaluations, start=1):
        note = " (traces the step)" if number == 1 else ""
        print(f"| {number}{note} | {step} | {seconds:.1f} |")
    times = [seconds for _, seconds in evaluations]
    median = statistics.median(times)
    print(f"\nall {len(times)}: longest {max(times):.1f} s, median {median:.1f} s")
    later = times[1:]
    if later:
        median = statistics.median(later)
        print(
            f"after the first: longest {max(later):.1f} s, median {median:.1f} s, "
            f"longest / median {max(later) / median:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
