"""Runs `nlp_bench.py` for garden-nlp and tf-models-official alternately; prints ratios.

    python benchmarks/nlp_compare.py --garden_python PY --tfm_python PY [--repeats 3]
        [--import_repeats 7] [--only train,import]

Each measurement runs in a fresh process of the side's own interpreter, alternating sides
so both see the same machine load; the table reports medians and Garden / Model Garden.
The import row times `nlp_bench.IMPORTS` (the modules that building and training a BERT
sentence classifier needs on each side) in `--import_repeats` fresh processes a side, with
`compare_lib.time_import`, as `vision_compare.py` does for ResNet.
`nox -s bench` calls it with tf-models-official installed in a venv of its own.
"""

from __future__ import annotations

import argparse
import os

import compare_lib
import nlp_bench

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
    parser.add_argument("--import_repeats", type=int, default=7)
    parser.add_argument(
        "--only", default="train,import", help="Comma-separated measurements (default: all)."
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - {"train", "import"}:
        parser.error(f"--only: unknown measurements {sorted(only - {'train', 'import'})}")
    sides = {"garden": args.garden_python, "tfm": args.tfm_python}

    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats if "train" in only else 0):
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
    modules_loaded = {}
    for _ in range(args.import_repeats if "import" in only else 0):
        for library, python in sides.items():
            record = compare_lib.time_import(python, nlp_bench.IMPORTS[library])
            results.setdefault(("import", library), []).append(record["seconds"])
            modules_loaded[library] = record["modules_loaded"]

    rows = [
        (
            "train",
            f"BERT-base fine-tuning, examples/s (batch {args.batch_size}, sequence 128)",
            True,
        ),
        (
            "import",
            f"import what building and training a BERT classifier needs, s "
            f"(median of {args.import_repeats} fresh processes)",
            False,
        ),
    ]
    rows = [row for row in rows if row[0] in only]
    compare_lib.print_table("garden-nlp", results, rows, show_spread=("import",))
    if "train" in only:
        for library in ("garden", "tfm"):
            runs = " ".join(f"{v:.3g}" for v in results[("train", library)])
            print(f"\nTraining runs, {library}: {runs} examples/s")
        print(
            f"Trainable parameters: garden {results[('parameters', 'garden')][0]:,}, "
            f"tf-models-official {results[('parameters', 'tfm')][0]:,}"
        )
    if "import" in only:
        for library, name in (("garden", "garden-nlp"), ("tfm", "tf-models-official")):
            print(
                f"\n{name} import row: {', '.join(nlp_bench.IMPORTS[library])} "
                f"({modules_loaded[library]} modules loaded)"
            )


if __name__ == "__main__":
    main()
