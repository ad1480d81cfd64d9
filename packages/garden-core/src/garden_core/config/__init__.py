"""Garden's config system: typed dataclass configs with Model Garden's semantics.

- `Config`: nested, type-checked, lockable configs with strict `override`, `replace`,
  restrictions (`validate`) and lossless `as_dict` / `as_yaml` / `from_dict` / `from_yaml`.
- `OneOfConfig`: a `type` field choosing one branch.
- `ExperimentConfig(task, trainer, runtime)`, `TaskConfig`, `TrainerConfig`,
  `RuntimeConfig`, `DataConfig` and `OptimizationConfig` with Model Garden's field names,
  type names and defaults.
- `parse_override_string` / `read_overrides` / `override_config`: the `a.b=1,c=[1,2]`
  grammar of `--params_override`, YAML files and their order of application.
- `ConfigError`: the only error raised; every message names the dotted path at fault.
"""

from garden_core.config.base import Config, load_mapping_file
from garden_core.config.definitions import (
    DataConfig,
    ExperimentConfig,
    RuntimeConfig,
    TaskConfig,
    TrainerConfig,
)
from garden_core.config.errors import ConfigError, UnknownKeyError
from garden_core.config.one_of import OneOfConfig
from garden_core.config.optimization import (
    EMAConfig,
    LrConfig,
    OptimizationConfig,
    OptimizerConfig,
    WarmupConfig,
)
from garden_core.config.overrides import override_config, parse_override_string, read_overrides
from garden_core.config.restrictions import check_restriction

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "EMAConfig",
    "ExperimentConfig",
    "LrConfig",
    "OneOfConfig",
    "OptimizationConfig",
    "OptimizerConfig",
    "RuntimeConfig",
    "TaskConfig",
    "TrainerConfig",
    "WarmupConfig",
    "UnknownKeyError",
    "check_restriction",
    "load_mapping_file",
    "override_config",
    "parse_override_string",
    "read_overrides",
]
