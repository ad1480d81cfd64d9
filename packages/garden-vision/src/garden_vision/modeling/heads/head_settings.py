"""Settings every Garden head shares: the activation, batch normalization and regularizers.

`NormActivationSettings` is a mixin for the heads' Keras layers: `set_norm_activation`
stores the settings (checking the activation's name) and `norm_activation_config` gives
them back for `get_config`. `norm_activation_kwargs` turns a `NormActivation` config and
the L2 regularizer into the heads' constructor arguments, as the `garden.heads` builders
pass them. `checked_ints` validates integer arguments with errors that name them.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import keras

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.layers.nn_layers import activation_fn
from garden_vision.modeling.serialization import serialize_regularizer


def checked_ints(owner: str, settings: Sequence[tuple[str, Any, int]]) -> list[int]:
    """The `(name, value, lowest)` values as ints; a `ConfigError` names the first bad one."""
    checked = []
    for name, value, low in settings:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ConfigError(f"{owner} `{name}` is {value!r}: must be an int >= {low}")
        checked.append(int(value))
    return checked


def norm_activation_kwargs(
    config: NormActivation, l2_regularizer: Any, use_sync_bn: bool = True
) -> dict[str, Any]:
    """A head's `activation`, batch normalization and `kernel_regularizer` arguments.

    `use_sync_bn=False` leaves out the config's `use_sync_bn` (Model Garden's mask head
    does not take it from the config).
    """
    kwargs = {
        "activation": config.activation,
        "norm_momentum": config.norm_momentum,
        "norm_epsilon": config.norm_epsilon,
        "kernel_regularizer": l2_regularizer,
    }
    if use_sync_bn:
        kwargs["use_sync_bn"] = config.use_sync_bn
    return kwargs


class NormActivationSettings:
    """Mixin of the heads: their activation, batch normalization and regularizer settings."""

    def set_norm_activation(
        self,
        activation: str,
        use_sync_bn: bool,
        norm_momentum: float,
        norm_epsilon: float,
        kernel_regularizer: Any,
        bias_regularizer: Any,
    ) -> None:
        """Stores the settings; `self._activation` is the activation function.

        Raises:
          ConfigError: For an activation name Garden does not know.
        """
        self._activation = activation_fn(activation)
        self.activation = activation
        self.use_sync_bn = bool(use_sync_bn)
        self.norm_momentum = norm_momentum
        self.norm_epsilon = norm_epsilon
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

    def norm_activation_config(self) -> dict[str, Any]:
        """The settings as `get_config` entries."""
        return {
            "activation": self.activation,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": self.norm_momentum,
            "norm_epsilon": self.norm_epsilon,
            "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(self.bias_regularizer),
        }
