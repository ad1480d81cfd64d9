"""Utilities for writing trainers, evaluators and outer loops.

Orbit's utilities under their Orbit names, plus the pieces garden-orbit adds: guarded loops
that stop at the end of the data, a terminal progress line and a `metrics.jsonl` writer.
"""

from garden_orbit.utils.common import create_global_step, get_value, make_distributed_dataset
from garden_orbit.utils.epoch_helper import EpochHelper
from garden_orbit.utils.loop_fns import (
    PeekedIterator,
    create_guarded_loop_fn,
    create_guarded_tf_while_loop_fn,
    create_loop_fn,
    create_tf_while_loop_fn,
    create_tf_while_loop_fn_with_state,
    is_infinite,
    supports_guarded_loops,
)
from garden_orbit.utils.metrics_log import MetricsJsonlWriter, read_metrics_jsonl
from garden_orbit.utils.progress import ProgressReporter
from garden_orbit.utils.summary_manager import SummaryManager, scalar_summary
from garden_orbit.utils.summary_manager_interface import SummaryManagerInterface
from garden_orbit.utils.tpu_summaries import LoopFnWithSummaries, OptionalSummariesFunction

__all__ = [
    "EpochHelper",
    "LoopFnWithSummaries",
    "MetricsJsonlWriter",
    "OptionalSummariesFunction",
    "PeekedIterator",
    "ProgressReporter",
    "SummaryManager",
    "SummaryManagerInterface",
    "create_global_step",
    "create_guarded_loop_fn",
    "create_guarded_tf_while_loop_fn",
    "create_loop_fn",
    "create_tf_while_loop_fn",
    "create_tf_while_loop_fn_with_state",
    "get_value",
    "is_infinite",
    "make_distributed_dataset",
    "read_metrics_jsonl",
    "scalar_summary",
    "supports_guarded_loops",
]
