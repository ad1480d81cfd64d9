"""The built-in optimizers, registered as `garden.optimizers` entry points of garden-core.

Each builder is what a third-party optimizer plugin is: it is called as

    builder(learning_rate=<float or schedule>, **settings)

where `settings` are the fields of its branch of `OptimizationConfig.optimizer` (e.g.
`optimizer: {type: adam, adam: {beta_1: 0.8}}` calls `adam(learning_rate=..., name="Adam",
beta_1=0.8, beta_2=0.999, ...)`). Each declares its branch's config class as
`config_class`, so it can also be built from a plain mapping, with the branch's defaults and
its unknown keys reported by dotted path. The `name` field is Model Garden's label for the
optimizer and is kept for its YAML; Keras names its optimizers itself.

Settings Keras 3 cannot honour raise `plugins.SettingError`, reported under the setting's
dotted path.
"""

from __future__ import annotations

from typing import Any

import keras

from garden_core.config.optimization import (
    AdafactorConfig,
    AdagradConfig,
    AdamConfig,
    AdamWeightDecayConfig,
    LAMBConfig,
    LARSConfig,
    LionConfig,
    RMSPropConfig,
    SGDConfig,
)
from garden_core.optimization.optimizers import LAMB, LARS, SGD, Adam, AdamWeightDecay
from garden_core.plugins import SettingError

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule


def _clipping(
    clipnorm: float | None, clipvalue: float | None, global_clipnorm: float | None
) -> dict[str, float]:
    given = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
    return {key: value for key, value in given.items() if value is not None}


def _unsupported(setting: str, value: Any, default: Any, why: str) -> None:
    if value != default:
        raise SettingError(
            setting, f"= {value!r} is not supported ({why}); leave it at {default!r}"
        )


def sgd(
    learning_rate: LearningRate,
    *,
    name: str,
    decay: float,
    nesterov: bool,
    momentum: float,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """Keras' SGD with (Nesterov) momentum (fused kernel); Model Garden's `decay` must stay 0."""
    del name
    _unsupported("decay", decay, 0.0, "use a learning-rate schedule")
    return SGD(
        learning_rate=learning_rate,
        momentum=momentum,
        nesterov=nesterov,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


sgd.config_class = SGDConfig


def adam(
    learning_rate: LearningRate,
    *,
    name: str,
    beta_1: float,
    beta_2: float,
    epsilon: float,
    amsgrad: bool,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """Adam (Keras' update with Garden's fused kernel)."""
    del name
    return Adam(
        learning_rate=learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        amsgrad=amsgrad,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


adam.config_class = AdamConfig


def adamw(
    learning_rate: LearningRate,
    *,
    name: str,
    beta_1: float,
    beta_2: float,
    epsilon: float,
    amsgrad: bool,
    weight_decay_rate: float,
    include_in_weight_decay: str | list[str] | None,
    exclude_from_weight_decay: str | list[str] | None,
    gradient_clip_norm: float,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """Adam with decoupled weight decay and include/exclude regexes.

    Model Garden's AdamW clips by global norm itself (`gradient_clip_norm`); Keras allows one
    kind of clipping, so explicit `clipnorm` / `clipvalue` / `global_clipnorm` settings take
    precedence over it.
    """
    del name
    clipping = _clipping(clipnorm, clipvalue, global_clipnorm)
    if gradient_clip_norm > 0 and not clipping:
        clipping["global_clipnorm"] = gradient_clip_norm
    return AdamWeightDecay(
        learning_rate=learning_rate,
        weight_decay=weight_decay_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        amsgrad=amsgrad,
        include_in_weight_decay=include_in_weight_decay,
        exclude_from_weight_decay=exclude_from_weight_decay,
        **clipping,
    )


adamw.config_class = AdamWeightDecayConfig


def lamb(
    learning_rate: LearningRate,
    *,
    name: str,
    beta_1: float,
    beta_2: float,
    epsilon: float,
    weight_decay_rate: float,
    exclude_from_weight_decay: list[str] | None,
    exclude_from_layer_adaptation: list[str] | None,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """LAMB: Adam moments with a per-layer trust ratio (You et al., 2019)."""
    del name
    return LAMB(
        learning_rate=learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        weight_decay_rate=weight_decay_rate,
        exclude_from_weight_decay=exclude_from_weight_decay,
        exclude_from_layer_adaptation=exclude_from_layer_adaptation,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


lamb.config_class = LAMBConfig


def lars(
    learning_rate: LearningRate,
    *,
    name: str,
    momentum: float,
    eeta: float,
    weight_decay_rate: float,
    nesterov: bool,
    classic_momentum: bool,
    exclude_from_weight_decay: list[str] | None,
    exclude_from_layer_adaptation: list[str] | None,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """LARS: SGD with momentum and a per-layer trust ratio (You et al., 2017)."""
    del name
    return LARS(
        learning_rate=learning_rate,
        momentum=momentum,
        eeta=eeta,
        weight_decay_rate=weight_decay_rate,
        nesterov=nesterov,
        classic_momentum=classic_momentum,
        exclude_from_weight_decay=exclude_from_weight_decay,
        exclude_from_layer_adaptation=exclude_from_layer_adaptation,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


lars.config_class = LARSConfig


def rmsprop(
    learning_rate: LearningRate,
    *,
    name: str,
    rho: float,
    momentum: float,
    epsilon: float,
    centered: bool,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """Keras' RMSprop."""
    del name
    return keras.optimizers.RMSprop(
        learning_rate=learning_rate,
        rho=rho,
        momentum=momentum,
        epsilon=epsilon,
        centered=centered,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


rmsprop.config_class = RMSPropConfig


def adagrad(
    learning_rate: LearningRate,
    *,
    name: str,
    initial_accumulator_value: float,
    epsilon: float,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """Keras' Adagrad."""
    del name
    return keras.optimizers.Adagrad(
        learning_rate=learning_rate,
        initial_accumulator_value=initial_accumulator_value,
        epsilon=epsilon,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


adagrad.config_class = AdagradConfig


def adafactor(
    learning_rate: LearningRate,
    *,
    name: str,
    factored: bool,
    multiply_by_parameter_scale: bool,
    beta1: float | None,
    decay_rate: float,
    step_offset: int,
    clipping_threshold: float,
    min_dim_size_to_factor: int,
    epsilon1: float,
    epsilon2: float,
    weight_decay: float | None,
    include_in_weight_decay: str | None,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """Keras' Adafactor, mapped from Model Garden's settings.

    Keras 3's Adafactor always factors and has no momentum, so `factored`, `beta1`,
    `step_offset` and `min_dim_size_to_factor` must stay at their defaults.
    `include_in_weight_decay` is accepted for Model Garden's YAML; Keras decays every
    variable when `weight_decay` is set.
    """
    del name, include_in_weight_decay
    keras_adafactor = "Keras 3's Adafactor always factors and has no momentum"
    _unsupported("factored", factored, True, keras_adafactor)
    _unsupported("beta1", beta1, None, keras_adafactor)
    _unsupported("step_offset", step_offset, 0, keras_adafactor)
    _unsupported("min_dim_size_to_factor", min_dim_size_to_factor, 128, keras_adafactor)
    return keras.optimizers.Adafactor(
        learning_rate=learning_rate,
        beta_2_decay=-decay_rate,
        epsilon_1=epsilon1,
        epsilon_2=epsilon2,
        clip_threshold=clipping_threshold,
        relative_step=multiply_by_parameter_scale,
        weight_decay=weight_decay,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


adafactor.config_class = AdafactorConfig


def lion(
    learning_rate: LearningRate,
    *,
    name: str,
    beta_1: float,
    beta_2: float,
    weight_decay_rate: float,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> keras.optimizers.Optimizer:
    """Keras' Lion (evolved sign momentum); a zero `weight_decay_rate` means no decay."""
    del name
    return keras.optimizers.Lion(
        learning_rate=learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        weight_decay=weight_decay_rate or None,
        **_clipping(clipnorm, clipvalue, global_clipnorm),
    )


lion.config_class = LionConfig
