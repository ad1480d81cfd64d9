"""Datasets that garden-vision generates itself, as TensorFlow Datasets (TFDS) builders.

`garden_vision.datasets.shapes` defines `garden_shapes`, the generated shapes dataset the
Quickstart trains on (see its docstring). Importing this package is cheap: it imports neither
TensorFlow nor TFDS. The names below are loaded on first use; importing
`garden_vision.datasets.shapes` (or touching `garden_vision.datasets.GardenShapes`) registers
the builder with TFDS, after which `tfds.load("garden_shapes", data_dir=...)` finds it.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "CLASS_NAMES": ".shapes:CLASS_NAMES",
        "GardenShapes": ".shapes:GardenShapes",
        "GardenShapesConfig": ".shapes:GardenShapesConfig",
        "prepare": ".shapes:prepare",
        "render_example": ".shapes:render_example",
        "shape_mask": ".shapes:shape_mask",
    },
)
