"""What the side-by-side drivers (`vision_compare.py`, `nlp_compare.py`) share.

Each measurement runs a benchmark script in a fresh process of one side's interpreter and
reads the JSON line it prints last; results are tables of medians with the ratio of Garden
to Model Garden.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Sequence

Results = dict[tuple[str, str], list[float]]


def run_json(python: str, script: str, *args: str) -> dict:
    """Runs `python script args` on the CPU and returns its last output line as JSON."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [python, script, *args], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_table(
    package: str,
    results: Results,
    rows: Sequence[tuple[str, str, bool]],
    show_runs: bool = False,
) -> None:
    """Prints `(key, label, higher_is_better)` rows of medians for `garden` and `tfm`.

    Args:
      package: The Garden package measured (the first column's title).
      results: `(key, "garden" | "tfm")` to the values of each run.
      rows: What to print, in order.
      show_runs: Also list each run's value after the median.
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
            cells.append(cell)
        garden = statistics.median(results[(key, "garden")])
        tfm = statistics.median(results[(key, "tfm")])
        ratio = garden / tfm if higher_is_better else tfm / garden
        note = "" if higher_is_better else " (smaller is better; ratio is MG / Garden)"
        print(f"| {label}{note} | {cells[0]} | {cells[1]} | {ratio:.2f}x |")
