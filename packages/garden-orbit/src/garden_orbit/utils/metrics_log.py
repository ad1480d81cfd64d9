"""A machine-readable record of training and evaluation outputs: one JSON object per line.

Each line looks like
`{"mode": "train", "step": 200, "time": 1732280000.5, "metrics": {"loss": 0.31}}`.
Values are plain JSON numbers (tensors and NumPy scalars become ints and floats, arrays
become lists) and nested outputs stay nested (`{"validation": {"top1": 0.9}}`), so
`json.loads` gives back Python numbers. NaN and infinities, which JSON cannot hold, are
written as `null`, so every line stays strict JSON that any parser reads.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from garden_orbit._tensorflow import tf
from garden_orbit.utils import atomic_write
from garden_orbit.utils.common import to_plain


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Returns `metrics` as JSON-ready plain values: numbers, lists, nested dicts.

    Tensors and NumPy values become Python numbers (arrays become lists), `bytes` become
    text, and NaN or infinite floats become None (`null` in JSON). Other objects are kept
    (the writer writes them as their `str()`).

    Args:
      metrics: Metric names to values, possibly nested.
    """
    return _finite_or_none(to_plain(metrics))


class MetricsJsonlWriter:
    """Appends records to a `metrics.jsonl` file, one complete line per record.

    A record is written with a single append and flushed, so a process killed mid-write can
    at worst leave one incomplete last line; the writer removes such a line before it writes
    again, so the file never holds a corrupt record in the middle. Remote paths (for
    example `gs://`) are supported by rewriting the file through `tf.io.gfile`.
    """

    def __init__(self, path: str):
        """Initializes the writer; the file and its directory are created on first write.

        Args:
          path: The file to append to.
        """
        self.path = path
        self._is_local = "://" not in path
        self._checked = False

    def write(self, mode: str, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """Appends one record and returns it.

        Args:
          mode: What produced the values, e.g. "train" or "eval".
          step: The global step the values belong to.
          metrics: The values; nested dicts stay nested (see `json_metrics`).
        """
        record = {
            "mode": mode,
            "step": int(step),
            "time": round(time.time(), 3),
            "metrics": json_metrics(metrics),
        }
        # An object that is neither a number nor text (rare in metrics) is written as its str().
        line = json.dumps(record, sort_keys=False, allow_nan=False, default=str) + "\n"
        if self._is_local:
            self._append_local(line)
        else:
            self._append_remote(line)
        return record

    def _append_local(self, line: str) -> None:
        if not self._checked:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._drop_partial_last_line()
            self._checked = True
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def _drop_partial_last_line(self) -> None:
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data.endswith(b"\n"):
                return
            f.truncate(data.rfind(b"\n") + 1)

    def _append_remote(self, line: str) -> None:
        content = ""
        if tf.io.gfile.exists(self.path):
            with tf.io.gfile.GFile(self.path, "r") as f:
                content = f.read()
            if content and not content.endswith("\n"):
                content = content[: content.rfind("\n") + 1]
        else:
            tf.io.gfile.makedirs(os.path.dirname(self.path))
        atomic_write.write_text(self.path, content + line)


def read_metrics_jsonl(path: str) -> list[dict[str, Any]]:
    """Reads the records of a metrics.jsonl file, skipping an incomplete last line."""
    records = []
    with tf.io.gfile.GFile(path, "r") as f:
        lines = f.read().split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):  # A write cut short by a crash; nothing follows it.
                break
            raise ValueError(f"{path}:{number}: not a JSON record ({e.msg})") from e
    return records
