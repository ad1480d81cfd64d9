"""What the side-by-side drivers (`vision_compare.py`, `nlp_compare.py`) share.

Each measurement runs a benchmark script in a fresh process of one side's interpreter and
reads the JSON line it prints last; results are tables of medians with the ratio of Garden
to Model Garden. Import times are measured one way for every row of both drivers
(`time_import`): a fresh interpreter imports the listed modules and reports the time the
imports took (interpreter start-up excluded), the modules loaded, and whether TensorFlow
and Keras (or tf-keras) came with them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Sequence

# Run by a fresh interpreter of one side: imports the modules named in argv, reports JSON.
_IMPORT_CODE = """
import importlib, json, sys, time
start = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds,
    "modules_loaded": len(sys.modules),
    "tensorflow": "tensorflow" in sys.modules,
    "keras": "keras" in sys.modules or "tf_keras" in sys.modules,
}))
"""

Results = dict[tuple[str, str], list[float]]


def run_json(python: str, script: str, *args: str) -> dict:
    """Runs `python script args` on the CPU and returns its last output line as JSON."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [python, script, *args], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_import(python: str, modules: Sequence[str]) -> dict:
    """Imports `modules`, in order, in a fresh `python` process; returns its JSON record.

    The record holds `seconds` (wall time of the imports alone, interpreter start-up
    excluded), `modules_loaded` (`len(sys.modules)` afterwards), and `tensorflow` and
    `keras` (whether they were imported).
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [python, "-c", _IMPORT_CODE, *modules], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"importing {', '.join(modules)} with {python} failed (exit "
            f"{result.returncode}):\n{result.stderr[-2000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_table(
    package: str,
    results: Results,
    rows: Sequence[tuple[str, str, bool]],
    show_runs: bool = False,
    show_spread: Sequence[str] = (),
) -> None:
    """Prints `(key, label, higher_is_better)` rows of medians for `garden` and `tfm`.

    Args:
      package: The Garden package measured (the first column's title).
      results: `(key, "garden" | "tfm")` to the values of each run.
      rows: What to print, in order.
      show_runs: Also list each run's value after the median.
      show_spread: Keys whose cells also give the range of the runs, `median (min–max)`.
    """
    print(f"| measurement | {package} | tf-models-official 2.20 | Garden / Model Garden |")
    print("|---|---|---|---|")
    for key, label, higher_is_better in rows:
        cells = []
        for library in ("garden", "tfm"):
            values = results[(key, library)]
            cell = f"{statistics.median(values):.3g}"
            if show_runs:
                cell += " (" + " ".join(f"{v:.3g}" for v in values) + ")"
            elif key in show_spread:
                cell += f" ({min(values):.3g}–{max(values):.3g})"
            cells.append(cell)
        garden = statistics.median(results[(key, "garden")])
        tfm = statistics.median(results[(key, "tfm")])
        ratio = garden / tfm if higher_is_better else tfm / garden
        note = "" if higher_is_better else " (smaller is better; ratio is MG / Garden)"
        print(f"| {label}{note} | {cells[0]} | {cells[1]} | {ratio:.2f}x |")
