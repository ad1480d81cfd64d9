"""Runs `nlp_bench.py` for garden-nlp and tf-models-official alternately; prints ratios.

    python benchmarks/nlp_compare.py --garden_python PY --tfm_python PY [--repeats 3]

Each measurement runs in a fresh process of the side's own interpreter, alternating sides
so both see the same machine load; the table reports medians and Garden / Model Garden.
`nox -s bench` calls it with tf-models-official installed in a venv of its own.
"""

from __future__ import annotations

import argparse
import os

import compare_lib

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nlp_bench.py")


def _run(python: str, *args: str) -> dict:
    return compare_lib.run_json(python, BENCH, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garden_python", required=True)
    parser.add_argument("--tfm_python", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    sides = {"garden": args.garden_python, "tfm": args.tfm_python}

    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for library, python in sides.items():
            record = _run(
                python,
                "train",
                "--library",
                library,
                "--batch_size",
                str(args.batch_size),
                "--steps",
                str(args.steps),
            )
            results.setdefault(("train", library), []).append(record["examples_per_second"])
            results[("parameters", library)] = [record["parameters"]]
    for library, python in sides.items():
        results[("import", library)] = [_run(python, "import", "--library", library)["seconds"]]

    rows = [
        (
            "train",
            f"BERT-base fine-tuning, examples/s (batch {args.batch_size}, sequence 128)",
            True,
        ),
        ("import", "`import garden_nlp.modeling` / `import official.nlp.modeling`, s", False),
    ]
    compare_lib.print_table("garden-nlp", results, rows, show_runs=True)
    print(
        f"\nTrainable parameters: garden {results[('parameters', 'garden')][0]:,}, "
        f"tf-models-official {results[('parameters', 'tfm')][0]:,}"
    )


if __name__ == "__main__":
    main()
