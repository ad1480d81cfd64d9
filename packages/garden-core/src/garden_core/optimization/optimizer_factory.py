"""Builds the Keras 3 optimizer an `OptimizationConfig` describes.

An `optimizer.type` that is not a built-in optimizer names a `garden.optimizers` plugin:
`registry.optimizers.get(type)` must be a callable (a `keras.optimizers.Optimizer` subclass
or a factory function) that is called as `factory(learning_rate=<schedule>, **settings)`
and returns a `keras.optimizers.Optimizer`. Settings are the plugin's mapping in the config
(`optimizer: {type: my_opt, my_opt: {beta: 0.5}}`); clipping, if wanted, is one of them
(`clipnorm: 1.0`), as Keras optimizers take it.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core.config import ConfigError, OptimizationConfig
from garden_core.optimization.lr_factory import (
    build_learning_rate,
    call_plugin,
    load_plugin,
    summarize,
)
from garden_core.optimization.optimizers import LAMB, LARS, Adam, AdamWeightDecay


def _clipping(config: Any) -> dict[str, float]:
    return {
        name: getattr(config, name)
        for name in ("clipnorm", "clipvalue", "global_clipnorm")
        if getattr(config, name) is not None
    }


def _unsupported(where: str, field: str, value: Any, default: Any, why: str) -> None:
    if value != default:
        raise ConfigError(
            f"`{where}.{field}` = {value!r} is not supported ({why}); leave it at {default!r}"
        )


def build_optimizer(
    config: OptimizationConfig,
    learning_rate: Any = None,
    path: str = "optimizer_config",
) -> keras.optimizers.Optimizer:
    """Returns the optimizer of `config.optimizer`, with its learning rate and clipping.

    Args:
      config: The optimization config.
      learning_rate: A float or schedule; by default the one `config` describes (see
        `build_learning_rate`).
      path: Where `config` sits in the experiment config, for error messages.

    Raises:
      ConfigError: If no optimizer is chosen, a setting cannot be honoured, or a plugin
        optimizer cannot be loaded, rejects its settings or returns no Keras optimizer.
    """
    kind = config.optimizer.type
    if kind is None:
        raise ConfigError(f"`{path}.optimizer.type` must name an optimizer")
    if learning_rate is None:
        learning_rate = build_learning_rate(config, path)
    options = config.optimizer.get()
    where = f"{path}.optimizer.{kind}"
    if config.optimizer.uses_plugin:
        factory, description = load_plugin("optimizers", kind, f"{path}.optimizer")
        if "learning_rate" in options:
            raise ConfigError(
                f"`{where}.learning_rate` cannot be set: the learning rate comes from "
                f"`{path}.learning_rate`"
            )
        optimizer = call_plugin(
            factory, description, where, {"learning_rate": learning_rate, **options}
        )
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise ConfigError(
                f"`{where}`: {description} returned {summarize(optimizer)}, not a "
                "keras.optimizers.Optimizer"
            )
        return optimizer
    common = {"learning_rate": learning_rate, **_clipping(options)}
    if kind == "sgd":
        _unsupported(where, "decay", options.decay, 0.0, "use a learning-rate schedule")
        return keras.optimizers.SGD(momentum=options.momentum, nesterov=options.nesterov, **common)
    if kind == "adam":
        return Adam(
            beta_1=options.beta_1,
            beta_2=options.beta_2,
            epsilon=options.epsilon,
            amsgrad=options.amsgrad,
            **common,
        )
    if kind == "adamw":
        # Model Garden's AdamW clips by global norm itself; Keras allows one kind of clipping,
        # so explicit clipnorm/clipvalue/global_clipnorm settings take precedence.
        if options.gradient_clip_norm > 0 and not _clipping(options):
            common["global_clipnorm"] = options.gradient_clip_norm
        return AdamWeightDecay(
            weight_decay=options.weight_decay_rate,
            beta_1=options.beta_1,
            beta_2=options.beta_2,
            epsilon=options.epsilon,
            amsgrad=options.amsgrad,
            include_in_weight_decay=options.include_in_weight_decay,
            exclude_from_weight_decay=options.exclude_from_weight_decay,
            **common,
        )
    if kind == "lamb":
        return LAMB(
            beta_1=options.beta_1,
            beta_2=options.beta_2,
            epsilon=options.epsilon,
            weight_decay_rate=options.weight_decay_rate,
            exclude_from_weight_decay=options.exclude_from_weight_decay,
            exclude_from_layer_adaptation=options.exclude_from_layer_adaptation,
            **common,
        )
    if kind == "lars":
        return LARS(
            momentum=options.momentum,
            eeta=options.eeta,
            weight_decay_rate=options.weight_decay_rate,
            nesterov=options.nesterov,
            classic_momentum=options.classic_momentum,
            exclude_from_weight_decay=options.exclude_from_weight_decay,
            exclude_from_layer_adaptation=options.exclude_from_layer_adaptation,
            **common,
        )
    if kind == "rmsprop":
        return keras.optimizers.RMSprop(
            rho=options.rho,
            momentum=options.momentum,
            epsilon=options.epsilon,
            centered=options.centered,
            **common,
        )
    if kind == "adagrad":
        return keras.optimizers.Adagrad(
            initial_accumulator_value=options.initial_accumulator_value,
            epsilon=options.epsilon,
            **common,
        )
    if kind == "adafactor":
        keras_adafactor = "Keras 3's Adafactor always factors and has no momentum"
        _unsupported(where, "factored", options.factored, True, keras_adafactor)
        _unsupported(where, "beta1", options.beta1, None, keras_adafactor)
        _unsupported(where, "step_offset", options.step_offset, 0, keras_adafactor)
        _unsupported(
            where, "min_dim_size_to_factor", options.min_dim_size_to_factor, 128, keras_adafactor
        )
        return keras.optimizers.Adafactor(
            beta_2_decay=-options.decay_rate,
            epsilon_1=options.epsilon1,
            epsilon_2=options.epsilon2,
            clip_threshold=options.clipping_threshold,
            relative_step=options.multiply_by_parameter_scale,
            weight_decay=options.weight_decay,
            **common,
        )
    if kind == "lion":
        return keras.optimizers.Lion(
            beta_1=options.beta_1,
            beta_2=options.beta_2,
            weight_decay=options.weight_decay_rate or None,
            **common,
        )
    raise ConfigError(f"`{path}.optimizer.type` {kind!r} has no builder")
