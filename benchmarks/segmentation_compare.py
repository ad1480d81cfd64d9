"""Runs `segmentation_bench.py` for garden-vision and tf-models-official and prints ratios.

    python benchmarks/segmentation_compare.py --garden_python .venv/bin/python \\
        --tfm_python /path/to/tfm-venv/bin/python [--repeats 3] [--only seg_train,seg_input]
        [--batch_size 2] [--crop_size 256] [--data_dir DIR]

Each measurement runs in a fresh process per side, the sides alternating, `--repeats` times;
the table gives the medians (and ranges). Before reporting, the driver requires:

- `seg_train`: the same trainable-parameter count and the same model, loss and data settings
  (`segmentation_bench.SETTINGS`) on both sides; finite first losses;
- `seg_input`: the same output keys and shapes, and the evaluation-mode parse of the first
  records equal on both sides (images to 1e-3 after normalization, masks, valid masks and
  image_info exactly; the JPEG decoder is the same TensorFlow kernel).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_lib  # noqa: E402
import segmentation_bench  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "segmentation_bench.py")


def _run(python: str, *args: str) -> dict:
    return compare_lib.run_json(python, SCRIPT, *args)


def _fail(message: str) -> None:
    sys.exit(f"segmentation_compare.py: FAILED, {message}")


def _check_train(records: dict[str, dict]) -> None:
    garden, tfm = records["garden"], records["tfm"]
    if garden["parameters"] != tfm["parameters"]:
        _fail(
            f"trainable parameters differ: Garden {garden['parameters']:,}, Model Garden "
            f"{tfm['parameters']:,}"
        )
    differ = {
        key: (garden["settings"][key], tfm["settings"][key])
        for key in segmentation_bench.SETTINGS
        if garden["settings"][key] != tfm["settings"][key]
    }
    if differ:
        _fail(
            "the seg_deeplabv3plus_pascal settings differ:\n  "
            + "\n  ".join(f"{k}: Garden {g!r}, Model Garden {t!r}" for k, (g, t) in differ.items())
        )
    print(
        f"DeepLabV3+ trainable parameters: Garden {garden['parameters']:,}, Model Garden "
        f"{tfm['parameters']:,}; the {len(segmentation_bench.SETTINGS)} settings agree; "
        f"first-step losses (finite; initial weights differ): Garden {garden['first_loss']:.3f}, "
        f"Model Garden {tfm['first_loss']:.3f}"
    )


def _check_input(records: dict[str, dict], data: str) -> None:
    garden, tfm = records["garden"], records["tfm"]
    if garden["shapes"] != tfm["shapes"]:
        _fail(f"input shapes differ: Garden {garden['shapes']}, Model Garden {tfm['shapes']}")
    checks = {
        library: np.load(
            os.path.join(data, segmentation_bench.INPUT_CHECK_FILE.format(library=library))
        )
        for library in ("garden", "tfm")
    }
    for key in checks["tfm"].files:
        if key not in checks["garden"].files:
            _fail(f"Garden's evaluation parse has no {key!r}")
        expected, actual = checks["tfm"][key], checks["garden"][key]
        if expected.shape != actual.shape:
            _fail(f"{key}: shapes differ, Garden {actual.shape}, Model Garden {expected.shape}")
        tolerance = 1e-3 if key == "image" else 0.0
        worst = float(np.max(np.abs(expected - actual))) if expected.size else 0.0
        if worst > tolerance:
            _fail(f"{key}: the evaluation parses differ by up to {worst:.3g}")
    print(
        "Input pipelines: the same keys and shapes; the evaluation-mode parse of the first "
        f"{segmentation_bench.INPUT_CHECK_RECORDS} records agrees ("
        + ", ".join(sorted(checks["tfm"].files))
        + ")."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garden_python", required=True)
    parser.add_argument("--tfm_python", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=2, help="Training batch.")
    parser.add_argument("--crop_size", type=int, default=256, help="Training crop side.")
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--records", type=int, default=128)
    parser.add_argument("--input_batch_size", type=int, default=8)
    parser.add_argument("--input_epochs", type=int, default=2)
    parser.add_argument(
        "--data_dir", default=None, help="Where to write the data (default: a temporary dir)."
    )
    parser.add_argument("--only", default=",".join(segmentation_bench.MEASUREMENTS))
    args = parser.parse_args()
    only = [m for m in segmentation_bench.MEASUREMENTS if m in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(segmentation_bench.MEASUREMENTS)
    if unknown:
        parser.error(f"--only: unknown measurements {sorted(unknown)}")
    sides = {"garden": args.garden_python, "tfm": args.tfm_python}
    settings = {
        "seg_train": ["--warmup_steps", str(args.warmup_steps), "--steps", str(args.steps)],
        "seg_input": [
            "--batch_size",
            str(args.input_batch_size),
            "--epochs",
            str(args.input_epochs),
        ],
    }
    results: compare_lib.Results = {}
    with tempfile.TemporaryDirectory() as temporary:
        data = args.data_dir or temporary
        _run(
            args.garden_python,
            "make-data",
            data,
            "--batch_size",
            str(args.batch_size),
            "--crop_size",
            str(args.crop_size),
            "--records",
            str(args.records),
        )
        for repeat in range(args.repeats):
            for measurement in only:
                records = {}
                for library, python in sides.items():
                    records[library] = record = _run(
                        python,
                        measurement,
                        "--library",
                        library,
                        "--data",
                        data,
                        *settings[measurement],
                    )
                    results.setdefault((measurement, library), []).append(
                        record["images_per_second"]
                    )
                    if measurement == "seg_input":
                        results.setdefault(("seg_input_cpu", library), []).append(
                            record["images_per_cpu_second"]
                        )
                if repeat == 0:
                    if measurement == "seg_train":
                        _check_train(records)
                    else:
                        _check_input(records, data)
    size = segmentation_bench.INPUT_OUTPUT_SIZE
    rows = [
        (
            "seg_train",
            f"DeepLabV3+ (dilated ResNet-101, OS 16) training, images/s (batch {args.batch_size}, "
            f"{args.crop_size}x{args.crop_size}, SGD with momentum, same `tf.function` step)",
            True,
        ),
        (
            "seg_input",
            "Segmentation input pipeline, images/s (JPEG + PNG decode, flip, scale jitter "
            f"0.5-2, {size}x{size}; batches of {args.input_batch_size})",
            True,
        ),
        ("seg_input_cpu", "Segmentation input pipeline, images per CPU-second", True),
    ]
    rows = [row for row in rows if row[0].split("_cpu")[0] in only]
    print()
    compare_lib.print_table(
        "garden-vision", results, rows, show_spread=("seg_train", "seg_input", "seg_input_cpu")
    )


if __name__ == "__main__":
    main()
