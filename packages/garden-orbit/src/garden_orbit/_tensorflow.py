"""Imports TensorFlow for garden-orbit without TensorFlow's eager Keras preload.

When Keras is installed, `import tensorflow` also imports `keras.src.optimizers` (about 500
modules) so that Keras can register its optimizers with SavedModel early. garden-orbit is a
pure TensorFlow library and never uses Keras, so when it is the first to import TensorFlow it
skips that single preload through the `ImportError` path TensorFlow itself provides for it.
Nothing else changes: Keras loads as usual the first time anything imports it
(`import keras`, `tf.keras`), and a program that imported TensorFlow before garden-orbit
keeps TensorFlow's own behaviour.
"""

import importlib
import sys

_KERAS_PRELOAD = "keras.src.optimizers"


def _import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    real_import_module = importlib.import_module

    def import_module(name, package=None):
        if name == _KERAS_PRELOAD:
            raise ImportError(f"{_KERAS_PRELOAD} is loaded when Keras is first used")
        return real_import_module(name, package)

    importlib.import_module = import_module
    try:
        import tensorflow
    finally:
        importlib.import_module = real_import_module
    return tensorflow


tf = _import_tensorflow()
