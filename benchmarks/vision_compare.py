"""Runs `vision_bench.py` for garden-vision and tf-models-official alternately; prints ratios.

    python benchmarks/vision_compare.py --garden_python PY --tfm_python PY [--repeats 3]
        [--import_repeats 7] [--only train,input,import,size]

Each measurement runs in a fresh process of the side's own interpreter, alternating sides
so both see the same machine load; the table reports medians and Garden / Model Garden.
The import row times `vision_bench.IMPORTS` (the modules that building and training a
ResNet classifier needs on each side) in `--import_repeats` fresh processes a side, with
`compare_lib.time_import`, as `nlp_compare.py` does for BERT.
`nox -s bench` calls it with tf-models-official installed in a venv of its own.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import compare_lib
import vision_bench

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vision_bench.py")


def _run(python: str, *args: str) -> dict:
    return compare_lib.run_json(python, BENCH, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garden_python", required=True)
    parser.add_argument("--tfm_python", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--import_repeats", type=int, default=7)
    parser.add_argument(
        "--only",
        default="train,input,import,size",
        help="Comma-separated measurements to run (default: all).",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    unknown = only - {"train", "input", "import", "size"}
    if unknown:
        parser.error(f"--only: unknown measurements {sorted(unknown)}")
    sides = {"garden": args.garden_python, "tfm": args.tfm_python}

    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as data:
        if "input" in only:
            _run(args.garden_python, "make-data", data)
        for _ in range(args.repeats if only & {"train", "input"} else 0):
            for library, python in sides.items():
                if "train" in only:
                    record = _run(
                        python, "train", "--library", library, "--batch_size", str(args.batch_size)
                    )
                    results.setdefault(("train", library), []).append(record["images_per_second"])
                if "input" in only:
                    record = _run(python, "input", "--library", library, "--data", data)
                    results.setdefault(("input", library), []).append(record["images_per_second"])
                    results.setdefault(("input_cpu", library), []).append(
                        record["images_per_cpu_second"]
                    )
    modules_loaded = {}
    for _ in range(args.import_repeats if "import" in only else 0):
        for library, python in sides.items():
            record = compare_lib.time_import(python, vision_bench.IMPORTS[library])
            results.setdefault(("import", library), []).append(record["seconds"])
            modules_loaded[library] = record["modules_loaded"]
    if "size" in only:
        for library, python in sides.items():
            results[("size", library)] = [_run(python, "size")["bytes"] / 1e6]

    rows = [
        ("train", f"ResNet-50 training, images/s (batch {args.batch_size}, 224x224)", True),
        ("input", "ImageNet input pipeline, images/s (decode, crop, flip, normalize)", True),
        ("input_cpu", "ImageNet input pipeline, images per CPU-second", True),
        (
            "import",
            f"import what building and training a ResNet classifier needs, s "
            f"(median of {args.import_repeats} fresh processes)",
            False,
        ),
        ("size", "installed size beyond TensorFlow, MB", False),
    ]
    rows = [row for row in rows if row[0].split("_")[0] in only]
    compare_lib.print_table("garden-vision", results, rows, show_spread=("import",))
    if "import" in only:
        for library, name in (("garden", "garden-vision"), ("tfm", "tf-models-official")):
            print(
                f"\n{name} import row: {', '.join(vision_bench.IMPORTS[library])} "
                f"({modules_loaded[library]} modules loaded)"
            )


if __name__ == "__main__":
    main()
