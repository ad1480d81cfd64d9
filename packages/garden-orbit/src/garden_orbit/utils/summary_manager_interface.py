"""The interface a Controller uses to write summaries, for custom summary backends."""

from __future__ import annotations

import abc
from typing import Any


class SummaryManagerInterface(abc.ABC):
    """Writes (nested) dicts of values as summaries; implement it to log elsewhere."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Flushes everything written so far."""

    @abc.abstractmethod
    def summary_writer(self, relative_path: str = "") -> Any:
        """Returns the `tf.summary` writer for a sub-directory (used as a context manager)."""

    @abc.abstractmethod
    def write_summaries(self, summary_dict: dict[str, Any]) -> None:
        """Writes a dict of values; a nested dict goes to the sub-directory named by its key."""
