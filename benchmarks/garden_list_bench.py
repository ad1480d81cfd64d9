"""Benchmark: wall time of `garden list` with every Garden package installed.

`garden list` reads entry-point metadata only and must stay fast (target: under 0.5 s).
Run with `nox -s bench`; prints a Markdown table row.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    garden = shutil.which("garden") or sys.exit("the `garden` command is not installed")
    subprocess.run([garden, "list"], check=True, capture_output=True)  # Warm the file cache.
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run([garden, "list"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    probe = "import sys; from garden_core.cli import main; main(['list']); " + (
        "print('tensorflow' in sys.modules)"
    )
    imported_tf = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    print("\n| command | median wall time (s) | max (s) | imports tensorflow |")
    print("|---|---|---|---|")
    print(
        f"| `garden list` | {statistics.median(times):.3f} | {max(times):.3f} | "
        f"{'yes' if imported_tf == 'True' else 'no'} |"
    )


if __name__ == "__main__":
    main()
