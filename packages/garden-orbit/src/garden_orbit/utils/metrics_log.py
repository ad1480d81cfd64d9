"""A machine-readable record of training and evaluation outputs: one JSON object per line.

Each line looks like
`{"mode": "train", "step": 200, "time": 1732280000.5, "metrics": {"loss": 0.31}}`.
Nested outputs are flattened with `/` (`{"validation": {"top1": 0.9}}` becomes
`"validation/top1"`). Values that JSON cannot hold are written as strings: `"nan"`,
`"inf"` and `"-inf"`, so every line stays valid JSON.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np

from garden_orbit._tensorflow import tf
from garden_orbit.utils.common import get_value


def _json_value(value: Any) -> Any:
    value = get_value(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flattens nested dicts with `/`-joined keys and converts values to JSON types."""
    flat: dict[str, Any] = {}
    for name, value in metrics.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, prefix=f"{key}/"))
        else:
            flat[key] = _json_value(value)
    return flat


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
          metrics: The values; nested dicts are flattened.
        """
        record = {
            "mode": mode,
            "step": int(step),
            "time": round(time.time(), 3),
            "metrics": flatten_metrics(metrics),
        }
        line = json.dumps(record, sort_keys=False) + "\n"
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
        temp = f"{self.path}.tmp-{os.getpid()}"
        with tf.io.gfile.GFile(temp, "w") as f:
            f.write(content + line)
        tf.io.gfile.rename(temp, self.path, overwrite=True)


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
