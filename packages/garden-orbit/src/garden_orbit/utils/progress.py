"""A one-line, self-updating progress display for training on a terminal."""

from __future__ import annotations

import math
import shutil
import sys
from typing import Any, TextIO

from garden_orbit.utils.common import format_metrics


def format_duration(seconds: float) -> str:
    """Formats seconds as `1h02m`, `3m05s` or `42s`."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressReporter:
    """Shows `step N/T | S steps/s | ETA | metrics` on one terminal line.

    For example `step 624/1872 | 25.3 steps/s | ETA 49s | accuracy 0.823  training_loss 0.912`
    (metrics as `garden_orbit.utils.format_metrics` writes them).

    The line is rewritten in place with a carriage return. Other output should go through
    `message`, which ends the progress line first so the two never overwrite each other.
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        """Initializes the reporter.

        Args:
          stream: Where to write; defaults to `sys.stdout` at each write.
          enabled: Whether to show anything. None means "only when the stream is a
            terminal", so logs redirected to a file get no carriage-return lines.
        """
        self._stream = stream
        self._enabled = enabled
        self._line_open = False

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    @property
    def enabled(self) -> bool:
        """Whether the reporter writes anything."""
        if self._enabled is not None:
            return self._enabled
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def update(
        self,
        step: int,
        target_step: int | None,
        steps_per_second: float,
        metrics: dict[str, Any] | None = None,
    ) -> str:
        """Redraws the progress line and returns it.

        Args:
          step: The current global step.
          target_step: The step training runs to, or None when unknown (then no ETA).
          steps_per_second: The recent training speed.
          metrics: The latest training outputs, shown with `format_metrics`.
        """
        parts = [f"step {step}" + (f"/{target_step}" if target_step is not None else "")]
        if math.isfinite(steps_per_second) and steps_per_second > 0:
            parts.append(f"{steps_per_second:.3g} steps/s")
            if target_step is not None and target_step > step:
                parts.append(f"ETA {format_duration((target_step - step) / steps_per_second)}")
        if metrics:
            parts.append(format_metrics(metrics))
        line = " | ".join(parts)
        if self.enabled:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            shown = line[:width]
            self.stream.write("\r" + shown.ljust(width))
            self.stream.flush()
            self._line_open = True
        return line

    def message(self, text: str) -> None:
        """Writes a whole line of other output below the progress line."""
        if self.enabled:
            self.finish()
            self.stream.write(text + "\n")
            self.stream.flush()

    def finish(self) -> None:
        """Ends the progress line, if one is shown."""
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
