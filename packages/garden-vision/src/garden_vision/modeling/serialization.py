"""How garden-vision's layers and models store initializers and regularizers in configs.

Every layer and backbone keeps its kernel initializer in serialized form (a name or a config
dict) and makes a fresh initializer from it for each weight, because one initializer
instance with a seed would give every weight the same values. Regularizers are kept as
instances and serialized by `get_config`. These three functions are the one place that does
it, so every `get_config` / `from_config` round trip reads back what it wrote.
"""

from __future__ import annotations

from typing import Any

import keras


def serialize_initializer(initializer: Any) -> Any:
    """`initializer` (None, a name, a config dict or an instance) as a name or config dict."""
    if initializer is None or isinstance(initializer, str):
        return initializer
    return keras.initializers.serialize(keras.initializers.get(initializer))


def new_initializer(initializer: Any) -> keras.initializers.Initializer | None:
    """A fresh initializer instance from `initializer` (see `serialize_initializer`)."""
    if initializer is None:
        return None
    return keras.initializers.get(serialize_initializer(initializer))


def serialize_regularizer(regularizer: Any) -> Any:
    """`regularizer` (None, a name, a config dict or an instance) in JSON-friendly form."""
    if regularizer is None or isinstance(regularizer, str):
        return regularizer
    return keras.regularizers.serialize(keras.regularizers.get(regularizer))


__all__ = ["new_initializer", "serialize_initializer", "serialize_regularizer"]
