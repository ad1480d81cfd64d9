"""Releasing finished dataset iterators off the training thread.

Destroying a `tf.data` iterator whose pipeline is autotuned waits, inside TensorFlow, for the
iterator's autotuning thread (`tf_data_model`) to finish. That thread sleeps between tuning
rounds for up to a minute, and the wait is not always cut short, so `del iterator` can block
for tens of seconds. A distributed dataset's iterator always contains such iterators: the
per-device iterators that `tf.distribute` builds inside it take TensorFlow's default
options (autotuning on) whatever options the dataset itself carries. An evaluator that
starts a new iterator for every evaluation therefore destroys one autotuned iterator per
evaluation; done on the training thread, that showed up as evaluations taking 20-40 s
instead of 1-2 s, at random.

`release_in_background` hands the last references to a single daemon thread, where the
destructors run. TensorFlow releases the GIL while it waits, so training and evaluation
continue meanwhile.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

THREAD_NAME = "garden_orbit_release"


class _Releaser:
    """Drops references on one lazily started daemon thread, in the order they arrive."""

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def release(self, values: list[Any]) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()
        self._queue.put(values)

    def wait(self, timeout: float | None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def _run(self) -> None:
        while True:
            values = self._queue.get()
            values.clear()  # The last references: the destructors run on this thread.
            del values
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


_RELEASER = _Releaser()


def release_in_background(values: list[Any]) -> None:
    """Empties `values` on a background thread, so that its objects are destroyed there.

    Put the only references to the objects in a new list and keep no other: the objects
    are destroyed when the background thread empties the list, so a destructor that blocks
    (as an autotuned `tf.data` iterator's can) blocks that thread only. An attribute of a
    `tf.Module` (any `AutoTrackable`) is also held by the module's checkpoint dependencies
    until it is deleted, so `del` it rather than assigning None:

        iterators = [self._iterator]
        del self._iterator
        self._iterator = None
        garden_orbit.utils.release_in_background(iterators)

    Args:
      values: A list holding the objects to release, typically dataset iterators.
    """
    if not isinstance(values, list):
        raise TypeError(
            "release_in_background takes a list holding the objects to release (it empties "
            f"the list on its thread), got {type(values).__name__}"
        )
    _RELEASER.release(values)


def wait_for_releases(timeout: float | None = None) -> bool:
    """Waits until every object handed to `release_in_background` has been released.

    Args:
      timeout: Seconds to wait at most; None waits as long as it takes.

    Returns:
      True if all were released, False on timeout.
    """
    return _RELEASER.wait(timeout)
