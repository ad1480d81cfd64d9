"""Runs `detection_bench.py` and `maskrcnn_bench.py` for garden-vision and tf-models-official
alternately; prints ratios.

    python benchmarks/detection_compare.py --garden_python PY --tfm_python PY [--repeats 3]
        [--batch_size 2] [--image_size 256] [--data_dir DIR]
        [--only train,input,coco_eval,maskrcnn_train,maskrcnn_serve]

`make-data` writes the shared data once (with the Garden interpreter, plain NumPy and
TensorFlow code); then each measurement runs in a fresh process of each side's own
interpreter, alternating sides so both see the same machine load; the table reports
medians (min–max) and Garden / Model Garden. Before any number is reported the sides must
agree, or the script exits with status 1 naming the difference:

- `train`: the same trainable-parameter count, 34,091,159 as counted by hand
  (`EXPECTED_PARAMETERS`); each side's first loss must be finite;
- `input`: the same keys and shapes in a batch of images and labels (dtypes that differ
  are listed: Garden's class targets are int32, Model Garden's int64), and the same values
  (within `INPUT_TOLERANCE`) in both sides' evaluation-mode parse of the first records;
- `coco_eval`: every COCO metric (`AP`, `AP50`, ..., `ARl`) within 1e-6;
- `maskrcnn_train`: the same trainable-parameter count (46,367,089, Model Garden's own
  `maskrcnn_resnetfpn_coco` model, as `test_maskrcnn_model.py` also checks) and the same
  model and loss settings (`maskrcnn_bench.SETTINGS`); finite first losses;
- `maskrcnn_serve`: both exports are made from the same weights (Model Garden's, loaded into
  Garden's model) and must return the same detections on the same image: count and
  classes equal, scores, boxes and masks within `SERVE_TOLERANCE`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import compare_lib
import detection_bench
import maskrcnn_bench
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
METRIC_TOLERANCE = 1e-6
INPUT_TOLERANCE = 1e-4
# Largest differences allowed between the two exports' outputs (same weights, same image):
# scores and mask probabilities, and box coordinates in pixels.
SERVE_TOLERANCE = {"detection_scores": 1e-4, "detection_masks": 1e-3, "detection_boxes": 1e-2}
MEASUREMENTS = detection_bench.MEASUREMENTS + maskrcnn_bench.MEASUREMENTS
MASKRCNN_PARAMETERS = 46_367_089


def _run(python: str, *args: str) -> dict:
    script = "maskrcnn_bench.py" if args[0] in (*maskrcnn_bench.MEASUREMENTS, "export") else None
    if args[0] == "make-data" and "--maskrcnn" in args:
        script, args = "maskrcnn_bench.py", tuple(a for a in args if a != "--maskrcnn")
    script = script or "detection_bench.py"
    try:
        return compare_lib.run_json(python, os.path.join(HERE, script), *args)
    except subprocess.CalledProcessError as error:
        sys.exit(
            f"detection_compare.py: `{python} {script} {' '.join(args)}` failed "
            f"with exit status {error.returncode}:\n{error.stderr[-4000:]}"
        )


# RetinaNet ResNet-50 FPN with 91 classes and 9 anchors, counted by hand from the layer
# shapes: ResNet-50 without its classifier and without convolution biases 23,508,032
# (Keras' ResNet50 without top: 23,534,592 trainable, less 26,560 biases); FPN 3,871,232
# (1x1 laterals from 512, 1024, 2048 channels 918,272; five 3x3 convolutions of 256 with
# bias 2,950,400; five batch norms 2,560); head 6,711,895 (two towers of four shared 3x3
# convolutions 4,720,640, their per-level batch norms 20,480, the 3x3 class output of
# 9 x 91 = 1,887,795 and box output of 9 x 4 = 82,980).
EXPECTED_PARAMETERS = 34_091_159


def _check_train(records: dict[str, dict]) -> None:
    garden, tfm = records["garden"]["parameters"], records["tfm"]["parameters"]
    print(
        f"RetinaNet ResNet-50 FPN trainable parameters: Garden {garden:,}, Model Garden "
        f"{tfm:,} (by hand: {EXPECTED_PARAMETERS:,}); first-step losses (finite, not "
        f"compared: the initial weights differ): Garden {records['garden']['first_loss']:.4g}, "
        f"Model Garden {records['tfm']['first_loss']:.4g}"
    )
    if garden != tfm:
        sys.exit(
            f"detection_compare.py: FAILED, trainable parameters differ: Garden {garden:,}, "
            f"Model Garden {tfm:,} (difference {garden - tfm:+,})"
        )
    if garden != EXPECTED_PARAMETERS:
        sys.exit(
            f"detection_compare.py: FAILED, both sides have {garden:,} trainable parameters, "
            f"not the {EXPECTED_PARAMETERS:,} of retinanet_resnetfpn_coco's model"
        )


def _check_input(records: dict[str, dict]) -> None:
    garden, tfm = records["garden"]["shapes"], records["tfm"]["shapes"]
    differences = [
        f"{key}: Garden {garden.get(key, 'missing')}, Model Garden {tfm.get(key, 'missing')}"
        for key in sorted(set(garden) | set(tfm))
        if garden.get(key) != tfm.get(key)
    ]
    if differences:
        sys.exit(
            "detection_compare.py: FAILED, the input pipelines' batches differ in keys or "
            "shapes:\n  " + "\n  ".join(differences)
        )
    print(f"Input batches: the same {len(garden)} tensors (keys and shapes) on both sides.")
    garden, tfm = records["garden"]["dtypes"], records["tfm"]["dtypes"]
    for key in sorted(key for key in garden if garden[key] != tfm[key]):
        print(f"  dtype of {key}: Garden {garden[key]}, Model Garden {tfm[key]}")
    _check_input_values(records["garden"]["data"])


def _check_input_values(data: str) -> None:
    """Compares the sides' evaluation-mode parse of the same records (no randomness)."""
    garden, tfm = (
        np.load(os.path.join(data, detection_bench.INPUT_CHECK_FILE.format(library=library)))
        for library in ("garden", "tfm")
    )
    # Box targets are compared where they are trained (positive anchors, box weight > 0):
    # Model Garden encodes a zero box for the others, Garden writes zeros; both weigh 0.
    positive = np.repeat(tfm["box_weights"] > 0, 4, axis=-1)
    differences = {
        "image": np.abs(garden["image"] - tfm["image"]).max(),
        "image_info": np.abs(garden["image_info"] - tfm["image_info"]).max(),
        "anchor_boxes": np.abs(garden["anchor_boxes"] - tfm["anchor_boxes"]).max(),
        "cls_targets": np.abs(garden["cls_targets"] - tfm["cls_targets"]).max(),
        "cls_weights": np.abs(garden["cls_weights"] - tfm["cls_weights"]).max(),
        "box_weights": np.abs(garden["box_weights"] - tfm["box_weights"]).max(),
        "box_targets (positive anchors)": np.abs(
            garden["box_targets"][positive] - tfm["box_targets"][positive]
        ).max(),
    }
    failed = [
        f"{key}: {value:.3g}" for key, value in differences.items() if value > INPUT_TOLERANCE
    ]
    if failed:
        sys.exit(
            "detection_compare.py: FAILED, the evaluation-mode parse of the same records "
            f"differs by more than {INPUT_TOLERANCE} (largest absolute difference):\n  "
            + "\n  ".join(failed)
        )
    print(
        f"Evaluation-mode parse of {len(tfm['image'])} records: images, image_info, anchors, "
        f"class targets, weights and the box targets of {int(positive.sum()) // 4} positive "
        f"anchors agree (largest difference {max(differences.values()):.2g})."
    )


def _check_coco(records: dict[str, dict]) -> None:
    garden, tfm = records["garden"]["metrics"], records["tfm"]["metrics"]
    print(
        "COCO metrics (Garden / Model Garden): "
        + ", ".join(
            f"{name} {garden[name]:.6f}/{tfm[name]:.6f}" for name in detection_bench.COCO_METRICS
        )
    )
    differences = [
        f"{name}: Garden {garden[name]!r}, Model Garden {tfm[name]!r}"
        for name in detection_bench.COCO_METRICS
        if abs(garden[name] - tfm[name]) > METRIC_TOLERANCE
    ]
    if differences:
        sys.exit(
            f"detection_compare.py: FAILED, COCO metrics differ by more than "
            f"{METRIC_TOLERANCE}:\n  " + "\n  ".join(differences)
        )


def _check_maskrcnn_train(records: dict[str, dict]) -> None:
    garden, tfm = records["garden"], records["tfm"]
    print(
        f"Mask R-CNN ResNet-50 FPN trainable parameters: Garden {garden['parameters']:,}, "
        f"Model Garden {tfm['parameters']:,}; first-step losses (finite, not compared: ROI "
        f"sampling is random): Garden {garden['first_loss']:.4g}, Model Garden "
        f"{tfm['first_loss']:.4g}"
    )
    if not garden["parameters"] == tfm["parameters"] == MASKRCNN_PARAMETERS:
        sys.exit(
            "detection_compare.py: FAILED, trainable parameters are not both "
            f"{MASKRCNN_PARAMETERS:,}: Garden {garden['parameters']:,}, Model Garden "
            f"{tfm['parameters']:,}"
        )
    differences = [
        f"{key}: Garden {garden['settings'][key]!r}, Model Garden {tfm['settings'][key]!r}"
        for key in maskrcnn_bench.SETTINGS
        if garden["settings"][key] != tfm["settings"][key]
    ]
    if differences:
        sys.exit(
            "detection_compare.py: FAILED, the maskrcnn_resnetfpn_coco settings differ:\n  "
            + "\n  ".join(differences)
        )
    print(f"The {len(maskrcnn_bench.SETTINGS)} model and loss settings compared agree.")


def _check_maskrcnn_serve(records: dict[str, dict], data: str) -> None:
    garden, tfm = (
        np.load(os.path.join(data, f"serve_outputs_{library}.npz")) for library in ("garden", "tfm")
    )
    count = int(tfm["num_detections"][0])
    if int(garden["num_detections"][0]) != count or count == 0:
        sys.exit(
            "detection_compare.py: FAILED, the exports detect "
            f"{int(garden['num_detections'][0])} (Garden) and {count} (Model Garden) objects"
        )
    if not np.array_equal(
        garden["detection_classes"][0, :count], tfm["detection_classes"][0, :count]
    ):
        sys.exit("detection_compare.py: FAILED, the exports' detection classes differ")
    differences = {
        key: float(np.abs(garden[key][0, :count] - tfm[key][0, :count]).max())
        for key in SERVE_TOLERANCE
    }
    failed = [f"{k}: {v:.3g}" for k, v in differences.items() if v > SERVE_TOLERANCE[k]]
    if failed:
        sys.exit(
            "detection_compare.py: FAILED, the exports' outputs differ (largest absolute "
            "difference):\n  " + "\n  ".join(failed)
        )
    print(
        f"Exported Mask R-CNN (same weights, same image): both detect {count} objects with the "
        "same classes; largest differences "
        + ", ".join(f"{k} {v:.2g}" for k, v in differences.items())
        + "."
    )


CHECKS = {
    "train": _check_train,
    "input": _check_input,
    "coco_eval": _check_coco,
    "maskrcnn_train": _check_maskrcnn_train,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garden_python", required=True)
    parser.add_argument("--tfm_python", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=2, help="Training batch.")
    parser.add_argument("--image_size", type=int, default=256, help="Training image side.")
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--input_batch_size", type=int, default=8)
    parser.add_argument("--input_epochs", type=int, default=3)
    parser.add_argument("--records", type=int, default=256, help="TFRecords for `input`.")
    parser.add_argument("--coco_images", type=int, default=400, help="Images for `coco_eval`.")
    parser.add_argument("--coco_batch_size", type=int, default=8)
    parser.add_argument("--serve_calls", type=int, default=10)
    parser.add_argument(
        "--data_dir", default=None, help="Where to write the data (default: a temporary dir)."
    )
    parser.add_argument(
        "--maskrcnn_use_sync_bn",
        choices=["true", "false"],
        help="maskrcnn_train: sets norm_activation.use_sync_bn on both sides (default: the "
        "experiments' own, true).",
    )
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help="Comma-separated measurements to run (default: all).",
    )
    args = parser.parse_args()
    only = [name for name in MEASUREMENTS if name in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"--only: unknown measurements {sorted(unknown)}")
    sides = {"garden": args.garden_python, "tfm": args.tfm_python}
    settings = {
        "train": ["--warmup_steps", str(args.warmup_steps), "--steps", str(args.steps)],
        "input": ["--batch_size", str(args.input_batch_size), "--epochs", str(args.input_epochs)],
        "coco_eval": ["--batch_size", str(args.coco_batch_size)],
        "maskrcnn_train": [
            "--warmup_steps",
            str(args.warmup_steps),
            "--steps",
            str(args.steps),
            *(["--use_sync_bn", args.maskrcnn_use_sync_bn] if args.maskrcnn_use_sync_bn else []),
        ],
        "maskrcnn_serve": ["--calls", str(args.serve_calls)],
    }

    results: compare_lib.Results = {}
    with tempfile.TemporaryDirectory() as temporary:
        data = args.data_dir or temporary
        single = [name for name in only if name in detection_bench.MEASUREMENTS]
        if single:
            _run(
                args.garden_python,
                "make-data",
                data,
                "--only",
                ",".join(single),
                "--batch_size",
                str(args.batch_size),
                "--image_size",
                str(args.image_size),
                "--records",
                str(args.records),
                "--coco_images",
                str(args.coco_images),
            )
        if set(only) & set(maskrcnn_bench.MEASUREMENTS):
            size = ["--batch_size", str(args.batch_size), "--image_size", str(args.image_size)]
            _run(args.garden_python, "make-data", data, "--maskrcnn", *size)
        if "maskrcnn_serve" in only:
            # Model Garden's side first: Garden's export loads the weights it writes.
            for library in ("tfm", "garden"):
                _run(sides[library], "export", "--library", library, "--data", data)
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
                    if measurement == "coco_eval":
                        results.setdefault(("coco_eval", library), []).append(record["seconds"])
                    else:
                        results.setdefault((measurement, library), []).append(
                            record["images_per_second"]
                        )
                    if measurement == "input":
                        results.setdefault(("input_cpu", library), []).append(
                            record["images_per_cpu_second"]
                        )
                if repeat == 0 and measurement == "maskrcnn_serve":
                    _check_maskrcnn_serve(records, data)
                elif repeat == 0:
                    CHECKS[measurement](records)

    rows = [
        (
            "train",
            f"RetinaNet ResNet-50 FPN training, images/s (batch {args.batch_size}, "
            f"{args.image_size}x{args.image_size}, SGD with momentum, same `tf.function` step)",
            True,
        ),
        (
            "input",
            f"RetinaNet input pipeline, images/s (decode, flip, scale jitter, "
            f"{detection_bench.INPUT_OUTPUT_SIZE}x{detection_bench.INPUT_OUTPUT_SIZE}, "
            f"anchor labels; batches of {args.input_batch_size})",
            True,
        ),
        ("input_cpu", "RetinaNet input pipeline, images per CPU-second", True),
        (
            "maskrcnn_train",
            f"Mask R-CNN ResNet-50 FPN training, images/s (batch {args.batch_size}, "
            f"{args.image_size}x{args.image_size}, SGD with momentum, same `tf.function` step)",
            True,
        ),
        (
            "maskrcnn_serve",
            "Mask R-CNN ResNet-50 FPN exported SavedModel, images/s (batch 1, a 480x640 "
            f"image, model input {args.image_size}x{args.image_size}, same weights)",
            True,
        ),
        (
            "coco_eval",
            f"COCO evaluation of {args.coco_images} images (update_state + result), s",
            False,
        ),
    ]
    rows = [row for row in rows if row[0].split("_cpu")[0] in only]
    print()
    compare_lib.print_table(
        "garden-vision",
        results,
        rows,
        show_spread=(
            "train",
            "input",
            "input_cpu",
            "coco_eval",
            "maskrcnn_train",
            "maskrcnn_serve",
        ),
    )


if __name__ == "__main__":
    main()
