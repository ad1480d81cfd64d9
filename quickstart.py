"""Garden's Quickstart: train, export and check an image classifier with one command.

    python quickstart.py

On a machine with only Python 3.10-3.13, it

1. makes a virtual environment in `.quickstart/venv` and installs TensorFlow, the Garden
   packages from this checkout, nox and uv into it. The installer is uv: the one on `PATH`
   if there is one, else uv installed into the new environment with pip first (a few
   seconds; uv then downloads and installs the rest in parallel). pip does the whole install
   only when uv cannot be had (`--installer pip` asks for it);
2. trains the `shapes_classification` experiment (a half-width ResNet-18 on garden-vision's
   generated `garden_shapes` dataset, which needs no download) with
   `garden train --mode train_and_eval`, evaluating on the held-out validation split;
3. exports the trained model with `garden export` (image tensors and encoded images);
4. reloads the SavedModel, classifies the validation split with it and prints its top-1
   accuracy, and the time each step took and the total.

Everything it writes stays in `.quickstart/` (the environment, the generated dataset, the
model directory and the export). Run it again and it reuses the environment and the dataset
and resumes the trained model; `--fresh` starts the training and export over.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGES = ["garden-orbit", "garden-core", "garden-vision"]
EXPERIMENT = "shapes_classification"

# Run inside the Quickstart's environment: classify the validation split with the export.
CHECK_EXPORT = """
import sys
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from garden_vision.datasets import shapes

export_dir, data_dir = sys.argv[1], sys.argv[2]
served = tf.saved_model.load(export_dir)
classify = served.signatures["serving_default"]
builder = shapes.prepare("garden_shapes/single", data_dir)
correct = total = 0
for batch in tfds.as_numpy(builder.as_dataset(split="validation", batch_size=250)):
    classes = classify(tf.constant(batch["image"]))["classes"].numpy()
    correct += int(np.sum(classes == batch["label"]))
    total += len(classes)
print(f"exported model: top-1 accuracy {correct / total:.4f} on {total} validation images")
"""


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _run(*command: str, env: dict | None = None) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env)


def _install_uv_with_pip(python: str) -> str | None:
    """Installs uv into the environment of `python` with pip; returns its path, or None."""
    bin_dir = os.path.dirname(python)
    try:
        _run(python, "-m", "pip", "install", "--quiet", "uv>=0.5")
    except subprocess.CalledProcessError as error:
        print(f"installing uv with pip failed (exit {error.returncode}); pip installs the rest")
        return None
    uv = os.path.join(bin_dir, "uv.exe" if os.name == "nt" else "uv")
    return uv if os.path.exists(uv) else None


def _environment(work: str, installer: str) -> str:
    """Creates (once) the Quickstart's virtual environment; returns its `bin` directory.

    Args:
      work: The Quickstart's directory; the environment is `work/venv`.
      installer: `auto` (uv from `PATH`, else uv installed into the new environment with pip,
        else pip), `uv` (the same, but failing without uv) or `pip`.
    """
    env_dir = os.path.join(work, "venv")
    bin_dir = os.path.join(env_dir, "Scripts" if os.name == "nt" else "bin")
    python = os.path.join(bin_dir, "python")
    marker = os.path.join(env_dir, ".garden-installed")
    if os.path.exists(marker):
        print(f"reusing {env_dir}")
        return bin_dir
    # nox and uv too, so that `nox -s tests` runs from this environment afterwards.
    targets = ["tensorflow>=2.21", "nox>=2024.10", "uv>=0.5"]
    targets += [os.path.join(ROOT, "packages", p) for p in PACKAGES]
    uv = shutil.which("uv") if installer != "pip" else None
    if uv:
        _run(uv, "venv", "--quiet", "--python", sys.executable, env_dir)
    else:
        venv.create(env_dir, with_pip=True)
        if installer != "pip":
            uv = _install_uv_with_pip(python)
            if uv is None and installer == "uv":
                sys.exit("quickstart.py: --installer uv, but uv could not be installed")
    if uv:
        _run(uv, "pip", "install", "--quiet", "--python", python, *targets)
    else:
        _run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        _run(python, "-m", "pip", "install", "--quiet", *targets)
    with open(marker, "w") as f:
        f.write(f"installed with {'uv' if uv else 'pip'}\n")
    return bin_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=os.path.join(ROOT, ".quickstart"))
    parser.add_argument("--fresh", action="store_true", help="train and export from scratch")
    parser.add_argument(
        "--installer",
        choices=["auto", "uv", "pip"],
        default="auto",
        help="what installs the environment (auto: uv, installed with pip if need be, else pip)",
    )
    args = parser.parse_args()
    if sys.version_info < (3, 10) or sys.version_info >= (3, 14):
        sys.exit(f"quickstart.py: Garden needs Python 3.10-3.13, this is {sys.version.split()[0]}")

    start = time.monotonic()
    work = os.path.abspath(args.workdir)
    model_dir = os.path.join(work, "model")
    export_dir = os.path.join(work, "export")
    data_dir = os.path.join(work, "tensorflow_datasets")
    os.makedirs(work, exist_ok=True)
    if args.fresh:
        shutil.rmtree(model_dir, ignore_errors=True)
    shutil.rmtree(export_dir, ignore_errors=True)  # Exports are never overwritten.

    times: dict[str, float] = {}
    step_start = time.monotonic()
    _step("1/4 Installing TensorFlow and Garden into " + os.path.join(work, "venv"))
    bin_dir = _environment(work, args.installer)
    times["install"], step_start = time.monotonic() - step_start, time.monotonic()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    garden = os.path.join(bin_dir, "garden")
    data = f"task.train_data.tfds_data_dir={data_dir},task.validation_data.tfds_data_dir={data_dir}"

    _step(f"2/4 Training `{EXPERIMENT}` (generates garden_shapes on first use)")
    _run(
        garden, "train", "--experiment", EXPERIMENT, "--mode", "train_and_eval",
        "--params_override", data, "--model_dir", model_dir, env=env,
    )  # fmt: skip
    times["train and evaluate"], step_start = time.monotonic() - step_start, time.monotonic()

    _step("3/4 Exporting the trained model")
    _run(
        garden, "export", "--experiment", EXPERIMENT, "--params_override", data,
        "--checkpoint_path", model_dir, "--export_dir", export_dir,
        "--input_type", "image_tensor,image_bytes", env=env,
    )  # fmt: skip
    times["export"], step_start = time.monotonic() - step_start, time.monotonic()

    _step("4/4 Classifying the validation split with the exported model")
    _run(os.path.join(bin_dir, "python"), "-c", CHECK_EXPORT, export_dir, data_dir, env=env)
    times["check the export"] = time.monotonic() - step_start
    elapsed = time.monotonic() - start
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
    print(f"\nQuickstart finished in {elapsed:.0f} s ({steps}).")
    print(f"Model directory: {model_dir}\nSavedModel: {export_dir}")
    activate = os.path.relpath(os.path.join(bin_dir, "activate"))
    print(f"Next, the tests: `. {activate}` and then `nox -s tests`.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as error:
        sys.exit(f"quickstart.py: `{' '.join(error.cmd[:3])} ...` failed (exit {error.returncode})")
