"""The README's example runs as printed and trains a Keras 3 model to high accuracy."""

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _example_code():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.slow
def test_readme_example_trains_and_writes_the_model_dir():
    result = subprocess.run(
        [sys.executable, "-c", _example_code()],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"accuracy: ([0-9.]+)", result.stdout).group(1))
    assert accuracy >= 0.95
    listing = result.stdout.strip().splitlines()[-1]
    for entry in ("'checkpoint'", "'ckpt-200.index'", "'metrics.jsonl'", "'train'", "'validation'"):
        assert entry in listing
