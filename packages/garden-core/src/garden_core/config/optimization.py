"""Optimization configs: optimizers, learning-rate schedules, warmups and EMA.

Field names, type names and defaults follow Model Garden's `OptimizationConfig`, so its
YAML loads as is. The optimizers and schedules these configs describe are built by the
experiment runtime. Model Garden's `sgd_experimental`, `adam_experimental`,
`adamw_experimental` (aliases from the tf.keras 2.11 transition) and `slide` (an
unreleased optimizer) are accepted while not chosen, and rejected with a clear error if
chosen.
"""

from __future__ import annotations

import dataclasses

from garden_core.config.base import Config
from garden_core.config.one_of import OneOfConfig

_EXPERIMENTAL = "a tf.keras 2.11 transition alias; Keras 3 optimizers are the only kind"


def _field(config_class):
    return dataclasses.field(default_factory=config_class)


# Optimizers.


@dataclasses.dataclass
class BaseOptimizerConfig(Config):
    """Gradient clipping shared by every optimizer (each float >= 0, or None for none)."""

    clipnorm: float | None = None
    clipvalue: float | None = None
    global_clipnorm: float | None = None


@dataclasses.dataclass
class SGDConfig(BaseOptimizerConfig):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    name: str = "SGD"
    decay: float = 0.0
    nesterov: bool = False
    momentum: float = 0.0


@dataclasses.dataclass
class RMSPropConfig(BaseOptimizerConfig):
    """RMSprop."""

    name: str = "RMSprop"
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7
    centered: bool = False


@dataclasses.dataclass
class AdagradConfig(BaseOptimizerConfig):
    """Adagrad."""

    name: str = "Adagrad"
    initial_accumulator_value: float = 0.1
    epsilon: float = 1e-07


@dataclasses.dataclass
class AdamConfig(BaseOptimizerConfig):
    """Adam (with the AMSGrad option)."""

    name: str = "Adam"
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-07
    amsgrad: bool = False


@dataclasses.dataclass
class AdamWeightDecayConfig(BaseOptimizerConfig):
    """Adam with decoupled weight decay; include/exclude are variable-name regexes (one
    regex or a list; names are matched as `path` and as tf.keras's `path:0`)."""

    name: str = "AdamWeightDecay"
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-07
    amsgrad: bool = False
    weight_decay_rate: float = 0.0
    include_in_weight_decay: str | list[str] | None = None
    exclude_from_weight_decay: str | list[str] | None = None
    gradient_clip_norm: float = 1.0


@dataclasses.dataclass
class LAMBConfig(BaseOptimizerConfig):
    """LAMB: layer-wise adaptive moments for large-batch training."""

    name: str = "LAMB"
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    weight_decay_rate: float = 0.0
    exclude_from_weight_decay: list[str] | None = None
    exclude_from_layer_adaptation: list[str] | None = None


@dataclasses.dataclass
class LARSConfig(BaseOptimizerConfig):
    """LARS: layer-wise adaptive rate scaling."""

    name: str = "LARS"
    momentum: float = 0.9
    eeta: float = 0.001
    weight_decay_rate: float = 0.0
    nesterov: bool = False
    classic_momentum: bool = True
    exclude_from_weight_decay: list[str] | None = None
    exclude_from_layer_adaptation: list[str] | None = None


@dataclasses.dataclass
class AdafactorConfig(BaseOptimizerConfig):
    """Adafactor: factored second moments for memory-light training."""

    name: str = "Adafactor"
    factored: bool = True
    multiply_by_parameter_scale: bool = True
    beta1: float | None = None
    decay_rate: float = 0.8
    step_offset: int = 0
    clipping_threshold: float = 1.0
    min_dim_size_to_factor: int = 128
    epsilon1: float = 1e-30
    epsilon2: float = 1e-3
    weight_decay: float | None = None
    include_in_weight_decay: str | None = None


@dataclasses.dataclass
class LionConfig(BaseOptimizerConfig):
    """Lion (evolved sign momentum), with Keras 3's defaults."""

    name: str = "Lion"
    beta_1: float = 0.9
    beta_2: float = 0.99
    weight_decay_rate: float = 0.0


@dataclasses.dataclass
class EMAConfig(BaseOptimizerConfig):
    """Exponential moving average of the weights, swapped in for evaluation."""

    name: str = "ExponentialMovingAverage"
    trainable_weights_only: bool = True
    average_decay: float = 0.99
    start_step: int = 0
    dynamic_decay: bool = True


@dataclasses.dataclass
class OptimizerConfig(OneOfConfig):
    """Which optimizer to use (`type`) and the settings of each."""

    type: str | None = None
    sgd: SGDConfig = _field(SGDConfig)
    adam: AdamConfig = _field(AdamConfig)
    adamw: AdamWeightDecayConfig = _field(AdamWeightDecayConfig)
    lamb: LAMBConfig = _field(LAMBConfig)
    rmsprop: RMSPropConfig = _field(RMSPropConfig)
    lars: LARSConfig = _field(LARSConfig)
    adagrad: AdagradConfig = _field(AdagradConfig)
    adafactor: AdafactorConfig = _field(AdafactorConfig)
    lion: LionConfig = _field(LionConfig)

    # Each branch is built by the `garden.optimizers` entry point of its name (garden-core's
    # `optimization.optimizer_builders`). `type` may also name any other registered
    # optimizer; its settings are then a mapping under that name (see `config.one_of`).
    plugin_kind = "optimizers"
    unsupported_branches = {
        "sgd_experimental": _EXPERIMENTAL,
        "adam_experimental": _EXPERIMENTAL,
        "adamw_experimental": _EXPERIMENTAL,
        "slide": "SLIDE was never released with an implementation",
    }


# Learning-rate schedules.


@dataclasses.dataclass
class ConstantLrConfig(Config):
    """A constant learning rate."""

    name: str = "Constant"
    learning_rate: float = 0.1


@dataclasses.dataclass
class StepwiseLrConfig(Config):
    """Piecewise constant: `values[i]` until `boundaries[i]` (one more value than boundaries)."""

    name: str = "PiecewiseConstantDecay"
    boundaries: list[int] | None = None
    values: list[float] | None = None
    offset: int = 0


@dataclasses.dataclass
class ExponentialLrConfig(Config):
    """`initial * decay_rate ** (step / decay_steps)`, optionally in a staircase."""

    name: str = "ExponentialDecay"
    initial_learning_rate: float | None = None
    decay_steps: int | None = None
    decay_rate: float | None = None
    staircase: bool | None = None
    offset: int = 0


@dataclasses.dataclass
class PolynomialLrConfig(Config):
    """Polynomial decay from `initial_learning_rate` to `end_learning_rate`."""

    name: str = "PolynomialDecay"
    initial_learning_rate: float | None = None
    decay_steps: int | None = None
    end_learning_rate: float = 0.0001
    power: float = 1.0
    cycle: bool = False
    offset: int = 0


@dataclasses.dataclass
class CosineLrConfig(Config):
    """Cosine decay to `alpha * initial_learning_rate` over `decay_steps`."""

    name: str = "CosineDecay"
    initial_learning_rate: float | None = None
    decay_steps: int | None = None
    alpha: float = 0.0
    offset: int = 0


@dataclasses.dataclass
class DirectPowerLrConfig(Config):
    """`initial_learning_rate * step ** power`."""

    name: str = "DirectPowerDecay"
    initial_learning_rate: float | None = None
    power: float = -0.5


@dataclasses.dataclass
class PowerAndLinearDecayLrConfig(Config):
    """`step ** power`, times a linear decay to 0 over the last `linear_decay_fraction`."""

    name: str = "PowerAndLinearDecay"
    initial_learning_rate: float | None = None
    total_decay_steps: int | None = None
    power: float = -0.5
    linear_decay_fraction: float = 0.1
    offset: int = 0


@dataclasses.dataclass
class PowerDecayWithOffsetLrConfig(Config):
    """`pre_offset_learning_rate` before `offset`, then `lr * (step - offset) ** power`."""

    name: str = "PowerDecayWithOffset"
    initial_learning_rate: float | None = None
    power: float = -0.5
    offset: int = 0
    pre_offset_learning_rate: float = 1.0e6


@dataclasses.dataclass
class StepCosineLrConfig(Config):
    """Cosine decay from `values[i]` to `values[i + 1]` between successive boundaries."""

    name: str = "StepCosineDecayWithOffset"
    boundaries: list[int] | None = None
    values: list[float] | None = None
    offset: int = 0


@dataclasses.dataclass
class LrConfig(OneOfConfig):
    """Which learning-rate schedule to use (`type`) and the settings of each."""

    type: str | None = None
    constant: ConstantLrConfig = _field(ConstantLrConfig)
    stepwise: StepwiseLrConfig = _field(StepwiseLrConfig)
    exponential: ExponentialLrConfig = _field(ExponentialLrConfig)
    polynomial: PolynomialLrConfig = _field(PolynomialLrConfig)
    cosine: CosineLrConfig = _field(CosineLrConfig)
    power: DirectPowerLrConfig = _field(DirectPowerLrConfig)
    power_linear: PowerAndLinearDecayLrConfig = _field(PowerAndLinearDecayLrConfig)
    power_with_offset: PowerDecayWithOffsetLrConfig = _field(PowerDecayWithOffsetLrConfig)
    step_cosine_with_offset: StepCosineLrConfig = _field(StepCosineLrConfig)

    # Each branch is built by the `garden.schedules` entry point of its name (garden-core's
    # `optimization.schedule_builders`). `type` may also name any other registered schedule;
    # its settings are then a mapping under that name (see `config.one_of`).
    plugin_kind = "schedules"


# Warmups.


@dataclasses.dataclass
class LinearWarmupConfig(Config):
    """Linear ramp from `warmup_learning_rate` to the schedule's value at `warmup_steps`."""

    name: str = "linear"
    warmup_learning_rate: float = 0.0
    warmup_steps: int | None = None


@dataclasses.dataclass
class PolynomialWarmupConfig(Config):
    """Polynomial ramp `(step / warmup_steps) ** power` times the schedule's value."""

    name: str = "polynomial"
    power: float = 1.0
    warmup_steps: int | None = None


@dataclasses.dataclass
class WarmupConfig(OneOfConfig):
    """Which warmup to use (`type`, None for none) and the settings of each."""

    type: str | None = None
    linear: LinearWarmupConfig = _field(LinearWarmupConfig)
    polynomial: PolynomialWarmupConfig = _field(PolynomialWarmupConfig)


@dataclasses.dataclass
class OptimizationConfig(Config):
    """Optimizer, learning-rate schedule, warmup and optional EMA."""

    optimizer: OptimizerConfig = _field(OptimizerConfig)
    ema: EMAConfig | None = None
    learning_rate: LrConfig = _field(LrConfig)
    warmup: WarmupConfig = _field(WarmupConfig)
