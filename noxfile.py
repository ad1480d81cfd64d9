"""Developer sessions for the Garden monorepo.

`nox -s tests` runs every package's tests on every accelerator (`cpu`, `gpu`, `tpu`); a
`gpu` or `tpu` session on a machine without that hardware skips with a one-line reason.
`nox -s lint` checks style, `nox -s build` writes wheels and sdists into `dist/`, and
`nox -s isolation` installs each built wheel alone into a fresh environment and checks the
package import graph. Sessions use uv when it is installed and fall back to virtualenv.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).parent
DIST = ROOT / "dist"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = False

# Each package and the Garden packages it depends on, in install order.
PACKAGES: dict[str, list[str]] = {
    "orbit": [],
    "core": ["orbit"],
    "vision": ["orbit", "core"],
    "nlp": ["orbit", "core"],
    "research": ["orbit", "core", "vision", "nlp"],
}
# Optional extras each package's tests exercise (installed with it in its test sessions).
TEST_EXTRAS: dict[str, str] = {"vision": "[coco]", "nlp": "[sentencepiece,huggingface]"}
ACCELERATORS = ["cpu", "gpu", "tpu"]
# ruff changes its rules and formatting between minor versions: lint with a known one.
RUFF = "ruff>=0.17,<0.18"
TEST_REQUIREMENTS = ["pytest>=8", "pytest-xdist>=3.6", "hypothesis>=6.100"]
# The Model Garden release that benchmarks compare against.
TF_MODELS_OFFICIAL = "tf-models-official==2.20.0"
# How TensorFlow is installed for each accelerator.
TENSORFLOW = {
    "cpu": "tensorflow>=2.21",
    "gpu": "tensorflow[and-cuda]>=2.21",
    "tpu": "tensorflow-tpu>=2.21",
}


def _package_dir(name: str) -> Path:
    return ROOT / "packages" / f"garden-{name}"


def _missing_accelerator(accelerator: str) -> str | None:
    """Returns why `accelerator` is unavailable on this machine, or None if it is present."""
    if accelerator == "cpu":
        return None
    if accelerator == "gpu":
        if shutil.which("nvidia-smi") is None:
            return "no NVIDIA GPU here (nvidia-smi not found)"
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        if probe.returncode != 0 or "GPU" not in probe.stdout:
            return "no NVIDIA GPU here (nvidia-smi lists none)"
        return None
    if accelerator == "tpu":
        if glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
            return None
        if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
            return None
        return "no TPU here (no /dev/accel* or /dev/vfio device, TPU_NAME unset)"
    raise ValueError(f"unknown accelerator {accelerator!r}; expected one of {ACCELERATORS}")


@nox.session
@nox.parametrize("accelerator", ACCELERATORS)
@nox.parametrize("package", list(PACKAGES))
def tests(session: nox.Session, package: str, accelerator: str) -> None:
    """Runs one package's tests on one accelerator with pytest-xdist."""
    reason = _missing_accelerator(accelerator)
    if reason:
        session.skip(f"{accelerator}: {reason}")
    editable = []
    for name in [*PACKAGES[package], package]:
        editable += ["-e", str(_package_dir(name)) + TEST_EXTRAS.get(name, "")]
    session.install(TENSORFLOW[accelerator], *editable, *TEST_REQUIREMENTS)
    env = {"GARDEN_ACCELERATOR": accelerator, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if accelerator == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    args = session.posargs or ["-n", "auto", "--dist", "loadfile"]
    session.run(
        "pytest",
        str(_package_dir(package) / "tests"),
        "-p",
        "no:cacheprovider",
        *args,
        env=env,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Checks style with ruff (lint rules and formatting) over the whole repository."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def build(session: nox.Session) -> None:
    """Builds a wheel and an sdist of every package into dist/ and checks their metadata."""
    session.install("hatch>=1.13")
    shutil.rmtree(DIST, ignore_errors=True)
    # hatch builds in an environment of its own, which it fills with uv. nox points uv at this
    # session's venv (UV_PYTHON, UV_PROJECT_ENVIRONMENT), so those must not reach hatch: with
    # them hatchling lands here instead, and the build fails with "No module named hatchling"
    # (and keeps failing, as hatch reuses the broken environment). HATCH_DATA_DIR keeps hatch's
    # environments inside this session, away from anything a user or another run left behind.
    hatch_env = {
        "UV_PYTHON": None,
        "UV_PROJECT_ENVIRONMENT": None,
        "HATCH_DATA_DIR": str(Path(session.create_tmp()).resolve() / "hatch"),
    }
    for name in PACKAGES:
        with session.chdir(_package_dir(name)):
            session.run("hatch", "build", "-t", "wheel", "-t", "sdist", str(DIST), env=hatch_env)
    session.run("python", str(ROOT / "tools" / "check_dists.py"), str(DIST), *PACKAGES)


def _wheel(name: str) -> Path:
    """Returns the single built wheel of package `name` in dist/."""
    found = sorted(DIST.glob(f"garden_{name}-*.whl"))
    if len(found) != 1:
        raise RuntimeError(
            f"expected one garden_{name} wheel in {DIST}, found {len(found)}: run `nox -s build`"
        )
    return found[0]


@nox.session
def isolation(session: nox.Session) -> None:
    """Installs each built wheel alone in a fresh venv and checks what its import loads."""
    if not sorted(DIST.glob("*.whl")):
        session.error("dist/ holds no wheels: run `nox -s build` first")
    for name in PACKAGES:
        # The wheel and its Garden requirements come from dist/ as files, so a same-named
        # project on a package index can never stand in for them.
        local = [_wheel(sibling) for sibling in [*PACKAGES[name], name]]
        _check_fresh_install(session, f"isolated-{name}", name, [str(w) for w in local])
    # garden-orbit needs no sibling, so `pip install packages/garden-orbit` works from a checkout.
    _check_fresh_install(session, "source-orbit", "orbit", [str(_package_dir("orbit"))])


def _check_fresh_install(session: nox.Session, venv_name: str, name: str, targets: list[str]):
    """Installs `targets` into a new venv and runs the import-graph check for `name` there."""
    venv = Path(session.create_tmp()) / venv_name
    shutil.rmtree(venv, ignore_errors=True)
    python = venv / "bin" / "python"
    if shutil.which("uv"):
        session.run("uv", "venv", "--quiet", str(venv), external=True)
        install = ["uv", "pip", "install", "--quiet", "--python", str(python)]
    else:
        session.run("python", "-m", "venv", str(venv))
        install = [str(python), "-m", "pip", "install", "--quiet"]
    session.run(*install, *targets, external=True)
    session.run(str(python), str(ROOT / "tools" / "check_imports.py"), name, external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Runs the benchmarks in benchmarks/ and prints their tables (see benchmarks/README.md)."""
    editable = []
    for name in PACKAGES:  # Every Garden package, as `garden list` is measured with all of them.
        editable += ["-e", str(_package_dir(name)) + TEST_EXTRAS.get(name, "")]
    session.install(TENSORFLOW["cpu"], *editable)
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    session.run("python", str(ROOT / "benchmarks" / "garden_list_bench.py"), env=env)
    session.run("python", str(ROOT / "benchmarks" / "orbit_bench.py"), *session.posargs, env=env)
    session.run("python", str(ROOT / "benchmarks" / "runtime_bench.py"), env=env)
    session.run("python", str(ROOT / "benchmarks" / "eval_stall_bench.py"), env=env)
    session.run("python", str(ROOT / "benchmarks" / "resume_bench.py"), env=env)
    # garden-vision and garden-nlp side by side with tf-models-official, installed in a venv
    # of its own (it pins its own TensorFlow) and run alternately with this session's.
    tfm = Path(session.create_tmp()).resolve() / "tf-models-official"
    if not (tfm / "bin" / "python").exists():
        if shutil.which("uv"):
            session.run("uv", "venv", "--quiet", str(tfm), external=True)
            install = ["uv", "pip", "install", "--quiet", "--python", str(tfm / "bin" / "python")]
        else:
            session.run("python", "-m", "venv", str(tfm))
            install = [str(tfm / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        # Model Garden's NLP tasks import tensorflow_hub, which needs pkg_resources (setuptools<81).
        session.run(*install, TF_MODELS_OFFICIAL, "setuptools<81", external=True)
    for compare in (
        "vision_compare.py",
        "nlp_compare.py",
        "detection_compare.py",
        "segmentation_compare.py",
    ):
        session.run(
            "python",
            str(ROOT / "benchmarks" / compare),
            "--garden_python",
            "python",
            "--tfm_python",
            str(tfm / "bin" / "python"),
            env=env,
        )
    session.run(
        "python",
        str(ROOT / "benchmarks" / "nlp_tokenizer_bench.py"),
        "--compare_with",
        str(tfm / "bin" / "python"),
        env=env,
    )
