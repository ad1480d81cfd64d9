"""Test plumbing shared by every Garden package: accelerator selection for the test matrix.

`nox -s tests` runs each package's tests once per accelerator and says which through the
GARDEN_ACCELERATOR environment variable (`cpu` when unset). Tests marked `gpu` or `tpu` run
only in the session for that accelerator; in those sessions the hardware must really be
visible to TensorFlow, otherwise the whole session fails rather than silently testing the
CPU.
"""

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

ACCELERATOR = os.environ.get("GARDEN_ACCELERATOR", "cpu")
_TF_DEVICE_TYPES = {"gpu": "GPU", "tpu": "TPU"}


def pytest_configure(config):
    if ACCELERATOR not in ("cpu", "gpu", "tpu"):
        raise pytest.UsageError(
            f"GARDEN_ACCELERATOR={ACCELERATOR!r}: expected one of cpu, gpu, tpu"
        )
    if ACCELERATOR in _TF_DEVICE_TYPES:
        import tensorflow as tf

        device_type = _TF_DEVICE_TYPES[ACCELERATOR]
        if ACCELERATOR == "tpu":
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        if not tf.config.list_physical_devices(device_type) and not tf.config.list_logical_devices(
            device_type
        ):
            pytest.exit(
                f"GARDEN_ACCELERATOR={ACCELERATOR} but TensorFlow sees no {device_type}",
                returncode=1,
            )


def pytest_collection_modifyitems(config, items):
    for item in items:
        for accelerator in _TF_DEVICE_TYPES:
            if accelerator in item.keywords and accelerator != ACCELERATOR:
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"needs a {accelerator} (run the `{accelerator}` session)"
                    )
                )


def modules_after_import(module: str) -> set[str]:
    """Imports `module` in a fresh interpreter and returns the names in its `sys.modules`."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"`import {module}` failed:\n{result.stderr[-3000:]}"
    return set(json.loads(result.stdout.splitlines()[-1]))


def modules_of(loaded: set[str], *packages: str) -> list[str]:
    """The names in `loaded` that are `packages` or their submodules."""
    return sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in packages))


def garden_requirements(distribution: str) -> dict:
    """The installed `distribution`'s unconditional requirements on Garden packages, by name."""
    from packaging.requirements import Requirement

    requirements = [Requirement(t) for t in importlib.metadata.requires(distribution) or []]
    return {r.name: r for r in requirements if r.name.startswith("garden-") and r.marker is None}


@pytest.fixture
def import_probe():
    """`modules_after_import`, `modules_of` and `garden_requirements` for package tests."""
    return modules_after_import, modules_of, garden_requirements
