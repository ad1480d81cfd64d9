"""`OneOfConfig`: a config whose `type` field chooses one of its other fields.

    @dataclasses.dataclass
    class OptimizerConfig(OneOfConfig):
        type: str | None = "sgd"
        sgd: SGDConfig = dataclasses.field(default_factory=SGDConfig)
        adam: AdamConfig = dataclasses.field(default_factory=AdamConfig)

`get()` returns the chosen branch. In YAML it is written as `type` plus the chosen branch
(and any other branch that differs from its default, so nothing is lost on a round trip).

Plugin branches. A one-of that sets `plugin_kind` (e.g. `"optimizers"`) also accepts, as
`type`, any name registered in that registry (`garden_core.registry`: the
`garden.<plugin_kind>` entry points of installed distributions, plus in-process
registrations). Such a branch has no schema: its settings are a plain mapping under the same
key, passed as keyword arguments to the plugin by whatever builds the chosen branch:

    optimizer:
      type: my_opt          # offered by a `garden.optimizers` entry point
      my_opt: {beta: 0.5}   # the plugin's settings, or nothing for none

- Checking a name reads distribution metadata only: no provider module (and no TensorFlow)
  is imported while configs are read, overridden or written.
- Settings hold plain data (mappings with string keys, lists, strings, numbers, booleans,
  null), so they round-trip losslessly through YAML. Overrides merge into them recursively,
  and dotted keys are paths at every level (`optimizer.my_opt.beta=0.5`), so setting keys
  cannot contain dots. An empty mapping is the same as no settings.
- `get()` returns a copy of the chosen plugin's settings (a dict); change them with
  `override`, `replace` or by assigning a mapping to the attribute of that name.
- Built-in branches win: a registered name that is also a field of the config always means
  the field, so installing a plugin never changes what an existing config does. A plugin may
  however provide a name listed in `unsupported_branches`, which then becomes usable.
- A key that is neither a field nor a registered name is an error listing close matches
  among both.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
from typing import Any, ClassVar, TypeVar

from garden_core import registry as registry_lib
from garden_core.config.base import Config, _merge, expand_dotted_keys
from garden_core.config.errors import ConfigError, join_path, unknown_key

OneOfT = TypeVar("OneOfT", bound="OneOfConfig")
_SETTINGS = "_plugin_settings"
_PLAIN_SCALARS = (str, bool, int, float)


def _plain_settings(value: Any, path: str) -> Any:
    """Returns `value` as plain YAML data (dicts, lists, scalars), with dotted keys split.

    Raises:
      ConfigError: For a value that YAML cannot hold losslessly, naming its path.
    """
    if isinstance(value, collections.abc.Mapping):
        return {
            key: _plain_settings(item, join_path(path, key))
            for key, item in expand_dotted_keys(value, path).items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain_settings(item, join_path(path, i)) for i, item in enumerate(value)]
    if value is None or isinstance(value, _PLAIN_SCALARS):
        return value
    raise ConfigError(
        f"`{path}` expects plain settings (mappings, lists, strings, numbers, booleans or "
        f"null), got {value!r} ({type(value).__name__})"
    )


@dataclasses.dataclass
class OneOfConfig(Config):
    """A config with a `type` field naming the branch (another field) that is in use.

    Set `plugin_kind` to a registry kind to also accept plugin branches (see the module
    docstring).
    """

    type: str | None = None
    # Settings of plugin branches, by plugin name (never empty mappings). Not a config field:
    # it is read and written under the plugin's own name; it is a dataclass field so that
    # `==` compares it.
    _plugin_settings: dict[str, dict[str, Any]] = dataclasses.field(
        default_factory=dict, kw_only=True
    )

    # Model Garden branches Garden does not implement: name -> why. Their settings are
    # accepted while another branch is chosen (they have no effect there); choosing one is
    # an error that says it is not supported.
    unsupported_branches: ClassVar[dict[str, str]] = {}
    # The registry kind (e.g. "optimizers") whose names are also valid branches, or None.
    plugin_kind: ClassVar[str | None] = None
    _one_of_field_types: ClassVar[dict[type, dict[str, Any]]] = {}

    # Branches.

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        cached = OneOfConfig._one_of_field_types.get(cls)
        if cached is None:
            cached = {k: v for k, v in super().field_types().items() if k != _SETTINGS}
            OneOfConfig._one_of_field_types[cls] = cached
        return cached

    @classmethod
    def branches(cls) -> list[str]:
        """The names of the built-in branches (fields) `type` may choose."""
        return [name for name in cls.field_types() if name != "type"]

    @classmethod
    def plugin_names(cls) -> list[str]:
        """The registered plugin names `type` may choose (none without `plugin_kind`)."""
        if cls.plugin_kind is None:
            return []
        fields = cls.field_types()
        return [n for n in registry_lib.registry(cls.plugin_kind).names() if n not in fields]

    @classmethod
    def is_plugin_name(cls, name: str) -> bool:
        """Whether `name` is a registered plugin branch (reads metadata only)."""
        return (
            cls.plugin_kind is not None
            and isinstance(name, str)
            and name not in cls.field_types()
            and name in registry_lib.registry(cls.plugin_kind)
        )

    @property
    def uses_plugin(self) -> bool:
        """Whether `type` names a plugin branch rather than a built-in one."""
        return self.type is not None and self.type not in self.field_types()

    @classmethod
    def _unknown_key(cls, path: str, key: str, known: list[str] | None = None) -> ConfigError:
        """The unknown-key error, with close matches among `known` (fields) and plugins."""
        known = list(cls.field_types()) if known is None else known
        return unknown_key(path, key, {*known, *cls.plugin_names()})

    # Reading and changing.

    @classmethod
    def _drop_inert_unsupported(cls, data: dict, path: str) -> dict:
        data = super()._drop_inert_unsupported(data, path)
        kept = {}
        for key, value in data.items():
            if (
                key in cls.unsupported_branches
                and key not in cls.field_types()
                and not cls.is_plugin_name(key)
            ):
                if not isinstance(value, dict):
                    raise ConfigError(
                        f"`{join_path(path, key)}` expects the settings of Model Garden's "
                        f"`{key}` branch, got {value!r}"
                    )
                continue
            kept[key] = value
        return kept

    @classmethod
    def _split_plugin_keys(cls, data: dict, path: str, is_strict: bool) -> tuple[dict, dict]:
        """Splits expanded keys into (fields and unknown keys, plugin settings)."""
        fields, plugins = {}, {}
        types = cls.field_types()
        for key, value in data.items():
            if key in types:
                fields[key] = value
            elif cls.is_plugin_name(key):
                plugins[key] = value
            elif is_strict:
                raise cls._unknown_key(path, key)
            else:
                fields[key] = value  # `Config.override` skips it with a warning.
        return fields, plugins

    @classmethod
    def from_dict(cls: type[OneOfT], data: collections.abc.Mapping, path: str = "") -> OneOfT:
        if not isinstance(data, collections.abc.Mapping):
            return super().from_dict(data, path)  # Raises the usual error.
        data = cls._drop_inert_unsupported(expand_dotted_keys(data, path), path)
        fields, plugins = cls._split_plugin_keys(data, path, is_strict=True)
        cls._check_type(fields.get("type"), path)  # Here, for an error naming `path`.
        config = super().from_dict(fields, path)
        for key, value in plugins.items():
            config._set_plugin_settings(key, value, path)
        return config

    def override(
        self, overrides: collections.abc.Mapping | Config, is_strict: bool = True, path: str = ""
    ) -> None:
        if isinstance(overrides, Config):
            overrides = overrides.as_dict()
        if not isinstance(overrides, collections.abc.Mapping):
            super().override(overrides, is_strict, path)  # Raises the usual error.
            return
        data = self._drop_inert_unsupported(expand_dotted_keys(overrides, path), path)
        fields, plugins = self._split_plugin_keys(data, path, is_strict)
        super().override(fields, is_strict, path)
        for key, value in plugins.items():
            if isinstance(value, collections.abc.Mapping):  # Merged like a nested config.
                value = _merge(
                    self._plugin_settings.get(key, {}),
                    _plain_settings(value, join_path(path, key)),
                )
            self._set_plugin_settings(key, value, path)

    def _set_plugin_settings(self, name: str, value: Any, path: str) -> None:
        where = join_path(path, name)
        if self._locked:
            raise ConfigError(
                f"cannot set `{where}`: the config is locked (use `replace(...)` for a "
                "modified copy)"
            )
        if value is None:
            value = {}
        if not isinstance(value, collections.abc.Mapping):
            raise ConfigError(
                f"`{where}` expects a mapping of the settings of {self.plugin_kind[:-1]} "
                f"plugin `{name}`, got {value!r}"
            )
        settings = _plain_settings(value, where)
        if settings:
            self._plugin_settings[name] = settings
        else:
            self._plugin_settings.pop(name, None)

    @classmethod
    def _check_type(cls, value: Any, path: str) -> None:
        """Raises a `ConfigError` unless `value` is None, a branch or a plugin name."""
        if value is None:
            return
        where = join_path(path, "type")
        if not isinstance(value, str):
            raise ConfigError(f"`{where}` expects a branch name, got {value!r}")
        if value in cls.branches() or cls.is_plugin_name(value):
            return
        if value in cls.unsupported_branches:
            raise ConfigError(
                f"`{where}` is {value!r}: Garden does not support this Model Garden "
                f"choice ({cls.unsupported_branches[value]}); choose one of "
                + ", ".join(cls.branches() + cls.plugin_names())
            )
        error = cls._unknown_key(path, value, cls.branches())
        raise ConfigError(
            f"`{where}` is {value!r}, which is not one of this config's branches"
            + (f" or registered {cls.plugin_kind}" if cls.plugin_kind else "")
            + f": {str(error).split(': ', 1)[1]}"
        )

    def _set(self, name: str, value: Any, path: str) -> None:
        if name == "type":
            self._check_type(value, path)
        elif self.is_plugin_name(name):
            self._set_plugin_settings(name, value, path)
            return
        super()._set(name, value, path)

    def get(self) -> Any:
        """Returns the chosen branch (None when `type` is None).

        For a plugin branch, a copy of its settings: a dict, empty when none are set.
        """
        if self.type is None:
            return None
        if self.uses_plugin:
            return copy.deepcopy(self._plugin_settings.get(self.type, {}))
        return getattr(self, self.type)

    def as_dict(self) -> dict[str, Any]:
        full = super().as_dict()
        defaults = {f.name: f for f in dataclasses.fields(self)}
        kept: dict[str, Any] = {"type": self.type}
        if self.uses_plugin:
            kept[self.type] = copy.deepcopy(self._plugin_settings.get(self.type, {}))
        for name in self.branches():
            field = defaults[name]
            if field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = field.default
            if name == self.type or getattr(self, name) != default:
                kept[name] = full[name]
        for name, settings in self._plugin_settings.items():
            kept.setdefault(name, copy.deepcopy(settings))
        return kept
