"""Builds components through the registries: the one way every kind is built.

Every pluggable component, built-in or third-party, is found in its registry
(`garden_core.registry`) and called the same way:

    builder(**settings, **context)

- `settings` are the keyword settings from the config. For a one-of config (`type` plus
  branches, e.g. `backbone: {type: resnet, resnet: {model_id: 50}}`) they are the chosen
  branch: the fields of a built-in branch (nested configs stay config objects), or the plain
  mapping a plugin's branch holds in YAML (`build`). Where the caller names the builder
  (a task building its model), they are the fields of the config it passes (`build_named`).
- `context` are the keyword arguments the calling factory adds for that kind, the same for
  every builder of the kind (for example a backbone's `input_specs`,
  `norm_activation_config` and `l2_regularizer`). Each kind's contract is listed in
  garden-core's "Writing a plugin" guide.

A builder may declare a config class for its settings by setting `config_class` on itself
(a `garden_core.config.Config` dataclass). The settings are then read with
`config_class.from_dict(settings)` first, so they get defaults, types and restrictions, and
an unknown or mistyped key is an error naming its dotted path, before the builder is called
with that config's fields.

A builder that finds one of its settings wrong (unset where it is needed, inconsistent with
another) raises `SettingError(setting, problem)`; it becomes a `ConfigError` naming the
setting's dotted path in the experiment config.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from garden_core import registry as registry_lib
from garden_core.config.base import Config
from garden_core.config.errors import ConfigError, join_path
from garden_core.config.one_of import OneOfConfig


class SettingError(ValueError):
    """A builder's complaint about one of its settings, reported under its dotted path.

        if boundaries is None:
            raise plugins.SettingError("boundaries", "must be set for this schedule")

    becomes the `ConfigError` "`<path of the settings>.boundaries` must be set for this
    schedule" when the builder is called through `call`, `build` or `build_named`.

    Attributes:
      setting: The setting's name (or a dotted path below the builder's settings).
      problem: What is wrong, phrased to follow the setting's path.
    """

    def __init__(self, setting: str, problem: str):
        super().__init__(f"`{setting}` {problem}")
        self.setting = setting
        self.problem = problem


def load(kind: str, name: str, where: str) -> tuple[Callable[..., Any], str]:
    """Imports the builder registered as `name` in the `kind` registry.

    Args:
      kind: The registry kind, e.g. "backbones".
      name: The registered name (a one-of config's `type`, or a config class name).
      where: The dotted config path that chose it, for error messages.

    Returns:
      The builder, and a description of it for error messages: its kind, name, target and
      providing distribution.

    Raises:
      ConfigError: If the name cannot be resolved or imported (the registry's message is
        kept), or the registered object is not callable.
    """
    registry = registry_lib.registry(kind)
    try:
        builder = registry.get(name)
        entry = registry.entry(name) if name not in registry._local else None
    except registry_lib.RegistryError as error:
        raise ConfigError(f"`{where}` is {name!r}: {error}") from error
    source = (
        "registered in-process"
        if entry is None
        else f"from {entry.distribution} {entry.version}".strip()
    )
    target = entry.target if entry else registry_lib._describe(builder)
    description = f"{kind[:-1]} `{name}` ({target}, {source})"
    if not callable(builder):
        raise ConfigError(
            f"`{where}` is {name!r}, but {description} is a {type(builder).__name__}, "
            "not a class or function"
        )
    return builder, description


def fields_of(config: Config) -> dict[str, Any]:
    """A config's fields as keyword settings (nested configs stay config objects)."""
    return {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if not field.name.startswith("_")
    }


def settings_of(choice: OneOfConfig) -> dict[str, Any]:
    """The keyword settings of a one-of config's chosen branch ({} when there are none)."""
    branch = choice.get()
    if branch is None:
        return {}
    if isinstance(branch, Config):
        return fields_of(branch)
    return dict(branch)


def call(
    builder: Callable[..., Any],
    description: str,
    where: str,
    settings: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
) -> Any:
    """Calls `builder(**settings, **context)`; settings it rejects become `ConfigError`s.

    Args:
      builder: The registered callable (see `load`).
      description: The builder's description, for error messages.
      where: The dotted config path of the settings, for error messages.
      settings: The keyword settings from the config.
      context: The keyword arguments the calling factory adds for this kind.

    Raises:
      ConfigError: If a setting has the name of a context argument, the arguments do not fit
        the builder's signature, its `config_class` rejects the settings (unknown keys, types,
        restrictions: `config_class.validate(where)`), or the builder
        raises `TypeError` or `ValueError` (how Python and Keras reject arguments).
    """
    context = dict(context or {})
    config_class = getattr(builder, "config_class", None)
    if config_class is not None:
        if not (isinstance(config_class, type) and issubclass(config_class, Config)):
            raise ConfigError(
                f"`{where}`: {description} declares config_class {config_class!r}, which is "
                "not a garden_core.config.Config subclass"
            )
        config = config_class.from_dict(dict(settings), where)
        config.validate(where)
        settings = fields_of(config)
    clash = sorted(set(settings) & set(context))
    if clash:
        raise ConfigError(
            f"`{join_path(where, clash[0])}` cannot be set in the config: the "
            f"{description.split(' ', 1)[0]} factory passes `{clash[0]}` itself"
        )
    kwargs = {**settings, **context}
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as error:
        raise ConfigError(
            f"`{where}`: {description} cannot take these arguments ({error}); settings "
            f"given: {', '.join(sorted(settings)) or 'none'}; the factory adds: "
            f"{', '.join(sorted(context)) or 'nothing'}"
        ) from error
    except ValueError:  # No signature to check (some builtins); the call will tell.
        pass
    try:
        return builder(**kwargs)
    except ConfigError:  # Already names its path (e.g. a component the builder built).
        raise
    except SettingError as error:
        raise ConfigError(f"`{join_path(where, error.setting)}` {error.problem}") from error
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"`{where}`: {description} rejected its settings: {type(error).__name__}: {error}"
        ) from error


def build(kind: str, choice: OneOfConfig, where: str, **context: Any) -> Any:
    """Builds the component a one-of config chooses, through the `kind` registry.

        backbone = plugins.build(
            "backbones", model_config.backbone, "task.model.backbone",
            input_specs=input_specs, norm_activation_config=norm, l2_regularizer=l2,
        )

    Args:
      kind: The registry kind, e.g. "backbones".
      choice: The one-of config; its `type` is the registered name.
      where: The dotted path of `choice` in the experiment config, for error messages.
      **context: The keyword arguments this kind's factory adds (see the module docstring).

    Raises:
      ConfigError: If `type` is unset or cannot be resolved, or the builder rejects its
        arguments.
    """
    if choice.type is None:
        names = registry_lib.registry(kind).names()
        raise ConfigError(
            f"`{join_path(where, 'type')}` is not set: choose one of "
            + (", ".join(names) or f"the registered {kind} (none are installed)")
        )
    builder, description = load(kind, choice.type, join_path(where, "type"))
    return call(builder, description, join_path(where, choice.type), settings_of(choice), context)


def build_named(
    kind: str, name: str, settings: Config | Mapping[str, Any], where: str, **context: Any
) -> Any:
    """Builds the component registered as `name`, with the settings of a whole config.

    Used where the caller, not a `type` field, names the builder: a task builds its model
    with `plugins.build_named("models", "bert_classifier", task_config.model, "task.model")`,
    so the model's builder is found in the registry like any plugin, and a research package
    can register its own models for its own tasks.

    Args:
      kind: The registry kind, e.g. "models".
      name: The registered name.
      settings: A config (its fields become keyword settings) or a mapping of settings.
      where: The dotted path of the settings in the experiment config, for error messages.
      **context: The keyword arguments this kind's factory adds.

    Raises:
      ConfigError: If the name cannot be resolved, or the builder rejects its arguments.
    """
    builder, description = load(kind, name, where)
    values = fields_of(settings) if isinstance(settings, Config) else dict(settings)
    return call(builder, description, where, values, context)


def summarize(value: Any) -> str:
    """`a dict ({'a': 1})`: what a builder returned, briefly, for error messages."""
    text = repr(value)
    return f"a {type(value).__name__} ({text[:60] + '...' if len(text) > 60 else text})"
