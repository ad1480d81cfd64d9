"""Builds an experiment's default config through the `garden.experiments` registry.

An experiment is a zero-argument factory returning an `ExperimentConfig`, registered under
its name:

    [project.entry-points."garden.experiments"]
    my_experiment = "my_package.experiments:my_experiment"

or in-process with `registry.experiments.register("my_experiment", my_experiment)`.

This sits apart from `garden_core.registry`, which knows nothing of configs: the config
system reads the registry (plugin branches of one-of configs), so the registry must not
import the config system.
"""

from __future__ import annotations

from garden_core import registry
from garden_core.config import Config, ExperimentConfig


def get_experiment_config(name: str) -> ExperimentConfig:
    """Builds the default config of experiment `name` (calls its zero-argument factory).

    Each call builds a new config, so callers may override it freely.

    Raises:
      RegistryError: If the name cannot be resolved (unknown names list close matches), its
        provider fails to import, its factory raises, or the factory does not return a
        `garden_core.config.Config`.
    """
    factory = registry.experiments.get(name)
    entry = registry.experiments.entry(name) if name not in registry.experiments._local else None
    where = f" from {entry.distribution} {entry.version}".rstrip() if entry else ""
    try:
        config = factory()
    except Exception as error:  # noqa: BLE001  (whatever the factory raises)
        raise registry.RegistryError(
            f"experiment `{name}`{where}: its factory raised {type(error).__name__}: {error}"
        ) from error
    if not isinstance(config, Config):
        raise registry.RegistryError(
            f"experiment `{name}`{where}: its factory returned {type(config).__name__}, "
            "not a garden_core.config.Config"
        )
    return config
