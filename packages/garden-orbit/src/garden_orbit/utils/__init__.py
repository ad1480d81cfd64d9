"""Utilities for writing trainers, evaluators and outer loops.

Orbit's utilities under their Orbit names, plus the pieces garden-orbit adds: guarded loops
that stop at the end of the data, a terminal progress line, a `metrics.jsonl` writer and
the formatting of metric values for logs (`format_metrics`).
"""

from garden_orbit.utils.background_release import release_in_background, wait_for_releases
from garden_orbit.utils.common import (
    create_global_step,
    format_metrics,
    format_number,
    get_value,
    make_distributed_dataset,
    to_plain,
)
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
from garden_orbit.utils.metrics_log import MetricsJsonlWriter, json_metrics, read_metrics_jsonl
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
    "format_metrics",
    "format_number",
    "get_value",
    "is_infinite",
    "json_metrics",
    "make_distributed_dataset",
    "read_metrics_jsonl",
    "release_in_background",
    "scalar_summary",
    "supports_guarded_loops",
    "to_plain",
    "wait_for_releases",
]
