"""garden-orbit: a small, flexible training-loop library for TensorFlow.

garden-orbit separates the inner loop of training (run N steps fast: `AbstractTrainer`,
`StandardTrainer`) from the outer loop (checkpoints, evaluation, summaries, actions:
`Controller`). It offers Orbit's public API under Orbit's names, so Orbit code runs after
`import garden_orbit as orbit`, and it depends on TensorFlow and absl-py only: importing it
loads neither Keras nor any other Garden package.
"""

from garden_orbit import actions, utils
from garden_orbit.__about__ import __version__
from garden_orbit._tensorflow import tf as _tf  # noqa: F401  (first: see _tensorflow.py)
from garden_orbit.controller import Action, Controller
from garden_orbit.runner import AbstractEvaluator, AbstractTrainer, Output
from garden_orbit.standard_runner import (
    StandardEvaluator,
    StandardEvaluatorOptions,
    StandardTrainer,
    StandardTrainerOptions,
)

__all__ = [
    "AbstractEvaluator",
    "AbstractTrainer",
    "Action",
    "Controller",
    "Output",
    "StandardEvaluator",
    "StandardEvaluatorOptions",
    "StandardTrainer",
    "StandardTrainerOptions",
    "__version__",
    "actions",
    "utils",
]
