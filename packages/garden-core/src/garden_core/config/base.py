"""`Config`: typed, nested, overridable, lockable dataclass configs with lossless YAML.

Declare a config as a dataclass:

    @dataclasses.dataclass
    class TrainerConfig(Config):
        train_steps: int = 0
        optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
        restrictions = ("train_steps >= 0",)

Values are checked against the annotations whenever they are set (at construction, by
attribute, by `override`, from YAML), and every error names the dotted path.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import json
import typing
from typing import Any, ClassVar, TypeVar

import yaml
from absl import logging

from garden_core.config import restrictions as restrictions_lib
from garden_core.config.errors import ConfigError, join_path, unknown_key
from garden_core.config.types import coerce

ConfigT = TypeVar("ConfigT", bound="Config")


def _plain(value: Any) -> Any:
    """Converts configs, tuples and nested containers to plain dicts and lists."""
    if isinstance(value, Config):
        return value.as_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _nested_configs(value: Any):
    """Yields (relative path, config) for configs inside a field value."""
    if isinstance(value, Config):
        yield "", value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            for sub, config in _nested_configs(item):
                yield f"[{i}]{sub}", config
    elif isinstance(value, dict):
        for key, item in value.items():
            for sub, config in _nested_configs(item):
                yield f".{key}{sub}", config


def _merge(old: collections.abc.Mapping, new: collections.abc.Mapping) -> dict:
    merged = dict(old)
    for key, value in new.items():
        current = merged.get(key)
        if isinstance(current, collections.abc.Mapping) and isinstance(
            value, collections.abc.Mapping
        ):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def expand_dotted_keys(overrides: collections.abc.Mapping, path: str = "") -> dict:
    """Splits the dotted keys of one level: `{"a.b": 1, "a": {"c": 2}}` -> `{"a": {"b": 1, ...}}`.

    Only the keys of this level are split (at their first dot); values are left alone, so
    the keys of a `dict`-typed field are never mistaken for paths. Each config level splits
    its own keys as the override descends.
    """
    expanded: dict = {}
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigError(f"`{join_path(path, str(key))}`: keys must be strings, got {key!r}")
        head, dot, rest = key.partition(".")
        expanded = _merge(expanded, {head: {rest: value} if dot else value})
    return expanded


@dataclasses.dataclass
class Config:
    """Base class of every Garden config.

    Subclasses are dataclasses. Class attribute `restrictions` lists checks that `validate`
    runs (see `garden_core.config.restrictions`).
    """

    restrictions: ClassVar[tuple[str, ...]] = ()
    # Model Garden fields that Garden does not implement: name -> (Model Garden's default,
    # why). Reading one at its default is accepted (it changes nothing); any other value is
    # an error that says the field is not supported, so nothing is silently ignored.
    unsupported_fields: ClassVar[dict[str, tuple[Any, str]]] = {}
    _locked: ClassVar[bool] = False
    _field_types_cache: ClassVar[dict[type, dict[str, Any]]] = {}

    # Fields and typing.

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """The dataclass fields of this config and their resolved annotations."""
        cached = Config._field_types_cache.get(cls)
        if cached is None:
            hints = typing.get_type_hints(cls)
            cached = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
            Config._field_types_cache[cls] = cached
        return cached

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        self._set(name, value, type(self).__name__)

    def _set(self, name: str, value: Any, path: str) -> None:
        types = self.field_types()
        if name not in types:
            raise unknown_key(path, name, types)
        if self._locked:
            raise ConfigError(
                f"cannot set `{join_path(path, name)}`: the config is locked "
                "(use `replace(...)` for a modified copy)"
            )
        object.__setattr__(self, name, coerce(value, types[name], join_path(path, name)))

    # Building.

    @classmethod
    def from_dict(cls: type[ConfigT], data: collections.abc.Mapping, path: str = "") -> ConfigT:
        """Builds a config from a (nested) mapping, checking every key and value.

        Args:
          data: Field values; nested mappings build nested configs; keys may be dotted.
          path: Where this config sits in a larger one, for error messages.

        Raises:
          ConfigError: For an unknown key (with close matches), a missing required field,
            or a value of the wrong type; the message names the dotted path.
        """
        if not isinstance(data, collections.abc.Mapping):
            where = f"`{path}`" if path else cls.__name__
            raise ConfigError(f"{where} expects a mapping of fields, got {data!r}")
        data = cls._drop_inert_unsupported(expand_dotted_keys(data, path), path)
        types = cls.field_types()
        for key in data:
            if key not in types:
                raise unknown_key(path, key, types)
        kwargs = {}
        for field in dataclasses.fields(cls):
            field_path = join_path(path, field.name)
            if field.name in data:
                kwargs[field.name] = coerce(data[field.name], types[field.name], field_path)
            elif (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ConfigError(f"`{field_path}` is required (it has no default) but missing")
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls: type[ConfigT], file_path: str) -> ConfigT:
        """Reads a config from a YAML file (safe loading only)."""
        return cls.from_dict(load_mapping_file(file_path))

    @classmethod
    def from_json(cls: type[ConfigT], file_path: str) -> ConfigT:
        """Reads a config from a JSON file."""
        return cls.from_dict(load_mapping_file(file_path))

    # Changing.

    def override(
        self, overrides: collections.abc.Mapping | Config, is_strict: bool = True, path: str = ""
    ) -> None:
        """Merges `overrides` into this config, recursively and in place.

        Args:
          overrides: A (nested) mapping or a config; mapping keys may be dotted paths.
          is_strict: Unknown keys are errors (with close matches). When False they are
            skipped with a warning naming them.
          path: Where this config sits in a larger one, for error messages.

        Raises:
          ConfigError: For unknown keys (when strict), bad values, or a locked config.
        """
        if isinstance(overrides, Config):
            overrides = overrides.as_dict()
        if not isinstance(overrides, collections.abc.Mapping):
            where = f"`{path}`" if path else type(self).__name__
            raise ConfigError(f"{where} expects a mapping of overrides, got {overrides!r}")
        types = self.field_types()
        overrides = self._drop_inert_unsupported(expand_dotted_keys(overrides, path), path)
        for key, value in overrides.items():
            key_path = join_path(path, key)
            if key not in types:
                if is_strict:
                    raise unknown_key(path, key, types)
                logging.warning("Ignoring unknown config key `%s`.", key_path)
                continue
            current = getattr(self, key)
            if isinstance(current, Config) and isinstance(value, collections.abc.Mapping):
                if self._locked:
                    raise ConfigError(f"cannot override `{key_path}`: the config is locked")
                current.override(value, is_strict=is_strict, path=key_path)
            elif isinstance(current, dict) and isinstance(value, collections.abc.Mapping):
                self._set(key, {**current, **value}, path)
            else:
                self._set(key, value, path)

    @classmethod
    def _drop_inert_unsupported(cls, data: dict, path: str) -> dict:
        """Removes unsupported Model Garden keys set to their default; rejects other values."""
        kept = {}
        for key, value in data.items():
            if key in cls.unsupported_fields and key not in cls.field_types():
                default, why = cls.unsupported_fields[key]
                if value != default:
                    raise ConfigError(
                        f"`{join_path(path, key)}` = {value!r}: Garden does not support this "
                        f"Model Garden field ({why}); leave it at its default {default!r}"
                    )
                continue
            kept[key] = value
        return kept

    def replace(self: ConfigT, **kwargs: Any) -> ConfigT:
        """Returns an unlocked copy with `kwargs` applied as (strict) overrides."""
        new = copy.deepcopy(self)
        new._set_locked(False)
        new.override(kwargs)
        return new

    def lock(self: ConfigT) -> ConfigT:
        """Forbids further changes to this config and every config inside it; returns it."""
        self._set_locked(True)
        return self

    @property
    def is_locked(self) -> bool:
        return self._locked

    def _set_locked(self, locked: bool) -> None:
        object.__setattr__(self, "_locked", locked)
        for name in self.field_types():
            for _, config in _nested_configs(getattr(self, name)):
                config._set_locked(locked)

    # Checking.

    def validate(self, path: str = "") -> None:
        """Checks the restrictions of this config and of every config inside it.

        Raises:
          ConfigError: Naming the first restriction that does not hold, and its values.
        """
        for restriction in type(self).restrictions:
            restrictions_lib.check_restriction(self, restriction, path)
        for name in self.field_types():
            for sub, config in _nested_configs(getattr(self, name)):
                config.validate(join_path(path, name) + sub)

    # Serializing.

    def as_dict(self) -> dict[str, Any]:
        """Returns the config as nested plain dicts and lists."""
        return {name: _plain(getattr(self, name)) for name in self.field_types()}

    def as_yaml(self) -> str:
        """Returns the config as YAML; `from_dict(yaml.safe_load(text))` gives it back."""
        return yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=False)

    def as_json(self) -> str:
        """Returns the config as JSON."""
        return json.dumps(self.as_dict(), indent=2)


def load_mapping_file(file_path: str) -> dict:
    """Reads a YAML (or JSON) file that must hold a mapping; errors name the file and line."""
    try:
        with open(file_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file {file_path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{file_path}:{mark.line + 1}:{mark.column + 1}" if mark else file_path
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: invalid YAML ({problem})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file_path}: expected a mapping at the top level, got {data!r}")
    return data
