"""Runs `vision_bench.py` for garden-vision and tf-models-official alternately; prints ratios.

    python benchmarks/vision_compare.py --garden_python PY --tfm_python PY [--repeats 2]

Each measurement runs in a fresh process of the side's own interpreter, alternating sides
so both see the same machine load; the table reports medians and Garden / Model Garden.
`nox -s bench` calls it with tf-models-official installed in a venv of its own.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import compare_lib

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vision_bench.py")


def _run(python: str, *args: str) -> dict:
    return compare_lib.run_json(python, BENCH, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garden_python", required=True)
    parser.add_argument("--tfm_python", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args()
    sides = {"garden": args.garden_python, "tfm": args.tfm_python}

    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as data:
        _run(args.garden_python, "make-data", data)
        for _ in range(args.repeats):
            for library, python in sides.items():
                record = _run(
                    python, "train", "--library", library, "--batch_size", str(args.batch_size)
                )
                results.setdefault(("train", library), []).append(record["images_per_second"])
                record = _run(python, "input", "--library", library, "--data", data)
                results.setdefault(("input", library), []).append(record["images_per_second"])
                results.setdefault(("input_cpu", library), []).append(
                    record["images_per_cpu_second"]
                )
    for library, python in sides.items():
        for module in ("package", "resnet"):
            record = _run(python, "import", "--library", library, "--module", module)
            results[(f"import_{module}", library)] = [record["seconds"]]
        results[("size", library)] = [_run(python, "size")["bytes"] / 1e6]

    rows = [
        ("train", f"ResNet-50 training, images/s (batch {args.batch_size}, 224x224)", True),
        ("input", "ImageNet input pipeline, images/s (decode, crop, flip, normalize)", True),
        ("input_cpu", "ImageNet input pipeline, images per CPU-second", True),
        ("import_package", "`import garden_vision` / `import official.vision`, s", False),
        ("import_resnet", "import of the ResNet backbone module (loads TensorFlow), s", False),
        ("size", "installed size beyond TensorFlow, MB", False),
    ]
    compare_lib.print_table("garden-vision", results, rows)


if __name__ == "__main__":
    main()
