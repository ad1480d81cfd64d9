"""Optimization for Garden experiments: optimizers, learning-rate schedules, warmups (Keras 3).

Importing this package imports Keras; `import garden_core` alone does not.
"""

from garden_core.optimization import lr_schedules
from garden_core.optimization.lr_factory import build_learning_rate, build_schedule
from garden_core.optimization.optimizer_factory import build_optimizer
from garden_core.optimization.optimizers import LAMB, LARS, AdamWeightDecay

__all__ = [
    "LAMB",
    "LARS",
    "AdamWeightDecay",
    "build_learning_rate",
    "build_optimizer",
    "build_schedule",
    "lr_schedules",
]
