"""`Backbone`: the base class of garden-vision's backbones (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import keras

from garden_core.config import ConfigError
from garden_vision.modeling.serialization import serialize_initializer, serialize_regularizer

InputSpecLike = keras.layers.InputSpec | Sequence[int | None] | Mapping[str, Any] | None


class Backbone(keras.Model):
    """A functional model whose call returns a dict of feature maps keyed by level.

    What every backbone shares lives here:

    - Input specs: `input_spec_of` turns what a backbone accepts as `input_specs` (an
      `InputSpec`, a shape list, a serialized `InputSpec`, or None for the class's
      `default_input_shape`) into an `InputSpec` of rank 4.
    - Outputs: `output_specs` reports the shape of every output.
    - Serialization: a subclass passes its constructor arguments as `config`; `get_config`
      returns them after `keras.Model`'s own (`name`, `trainable`, `dtype`), with
      initializers and regularizers serialized, and `from_config` calls the constructor
      with them.

    A subclass builds its graph in `__init__` and ends it with
    `super().__init__(inputs=inputs, outputs=endpoints, config=arguments, **kwargs)`, where
    `endpoints` maps `"2"` ... `"5"` (stride `2**level`), and optionally `"pre_logits"`, to
    tensors.

    Args:
      inputs: The `keras.Input` of the image.
      outputs: The dict of output tensors.
      config: The subclass's constructor arguments (without `name`, `trainable`, `dtype`).
      **kwargs: Passed to `keras.Model` (e.g. `name`, `trainable`, `dtype`).
    """

    #: The input shape used when `input_specs` is None.
    default_input_shape: ClassVar[tuple[int | None, ...]] = (None, None, None, 3)

    def __init__(
        self,
        inputs: Any,
        outputs: dict[str, Any],
        config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._output_specs = {key: tuple(value.shape) for key, value in outputs.items()}
        self._backbone_config = dict(config or {})

    @classmethod
    def input_spec_of(cls, input_specs: InputSpecLike) -> keras.layers.InputSpec:
        """`input_specs` as an `InputSpec(shape=[batch, height, width, channels])`.

        Args:
          input_specs: An `InputSpec`, a shape list or tuple, a serialized `InputSpec`
            (`{"shape": ...}`, possibly under `"config"`), or None for
            `default_input_shape`.

        Raises:
          ConfigError: If the shape is not of rank 4 or holds something other than sizes
            and None.
        """
        if input_specs is None:
            shape: Any = cls.default_input_shape
        elif isinstance(input_specs, keras.layers.InputSpec):
            shape = input_specs.shape
        elif isinstance(input_specs, Mapping):
            shape = input_specs.get("config", input_specs).get("shape")
        else:
            shape = input_specs
        name = f"{cls.__name__} `input_specs`"
        if shape is None or isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
            raise ConfigError(
                f"{name} must be an InputSpec or a shape [batch, height, width, channels], "
                f"got {input_specs!r}"
            )
        if len(shape) != 4:
            raise ConfigError(
                f"{name} must have the shape [batch, height, width, channels], got {list(shape)}"
            )
        try:
            sizes = [None if side is None else int(side) for side in shape]
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name}: every size must be an integer or None, got {list(shape)}"
            ) from None
        return keras.layers.InputSpec(shape=sizes)

    @property
    def output_specs(self) -> dict[str, tuple[int | None, ...]]:
        """Output key -> the shape of that output, batch dimension (None) first."""
        return dict(self._output_specs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key, value in self._backbone_config.items():
            if key.endswith("_initializer"):
                value = serialize_initializer(value)
            elif key.endswith("_regularizer"):
                value = serialize_regularizer(value)
            elif isinstance(value, keras.layers.InputSpec):
                value = list(value.shape)
            elif isinstance(value, tuple):
                value = list(value)
            config[key] = value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Backbone:
        return cls(**config)
