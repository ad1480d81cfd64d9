"""Test plumbing shared by every Garden package: accelerator selection for the test matrix.

`nox -s tests` runs each package's tests once per accelerator and says which through the
GARDEN_ACCELERATOR environment variable (`cpu` when unset). Tests marked `gpu` or `tpu` run
only in the session for that accelerator; in those sessions the hardware must really be
visible to TensorFlow, otherwise the whole session fails rather than silently testing the
CPU.
"""

import os

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
