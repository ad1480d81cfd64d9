"""A run killed with SIGKILL resumes mid-epoch and ends with the uninterrupted run's weights."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "workers", "resumable_train.py")
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(*args):
    return subprocess.run(
        [sys.executable, WORKER, *map(str, args)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_killed_run_resumes_mid_epoch_with_identical_final_weights(tmp_path):
    reference = _run(tmp_path / "reference", tmp_path / "reference.npy")
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert "finished at step 36" in reference.stdout

    model_dir = tmp_path / "interrupted"
    killed = _run(model_dir, tmp_path / "never_written.npy", 19)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "never_written.npy").exists()

    resumed = _run(model_dir, tmp_path / "resumed.npy")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The last checkpoint before the kill is mid-epoch (epochs are 12 steps long).
    assert "starting at step 16" in resumed.stdout
    assert "finished at step 36" in resumed.stdout
    np.testing.assert_array_equal(
        np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "reference.npy")
    )
