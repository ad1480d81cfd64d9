"""Optimization for Garden experiments: learning-rate schedules and warmups (Keras 3).

Importing this package imports Keras; `import garden_core` alone does not.
"""

from garden_core.optimization import lr_schedules
from garden_core.optimization.lr_factory import build_learning_rate, build_schedule

__all__ = ["build_learning_rate", "build_schedule", "lr_schedules"]
