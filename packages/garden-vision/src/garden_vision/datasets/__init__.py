"""Datasets that garden-vision generates itself, as TensorFlow Datasets (TFDS) builders.

`garden_vision.datasets.shapes` defines `garden_shapes`, the generated shapes dataset the
Quickstart trains on (see its docstring). Importing this package is cheap: it imports neither
TensorFlow nor TFDS. The names below are loaded on first use; importing
`garden_vision.datasets.shapes` (or touching `garden_vision.datasets.GardenShapes`) registers
the builder with TFDS, after which `tfds.load("garden_shapes", data_dir=...)` finds it.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY_NAMES = {
    "CLASS_NAMES": "garden_vision.datasets.shapes",
    "GardenShapes": "garden_vision.datasets.shapes",
    "GardenShapesConfig": "garden_vision.datasets.shapes",
    "prepare": "garden_vision.datasets.shapes",
    "render_example": "garden_vision.datasets.shapes",
    "shape_mask": "garden_vision.datasets.shapes",
}

__all__ = sorted(_LAZY_NAMES)


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))
