"""Checks and converts values against config field annotations.

Supported annotations: `int`, `float`, `bool`, `str`, `Any`, `X | None` (and `Optional`),
unions of those, `list[X]`, `tuple[X, ...]`, `Sequence[X]`, `dict` / `dict[str, X]`, and
nested `Config` classes. Conversion is conservative: an int is accepted for a float, a float
with an integral value for an int (YAML writes `1e4` as a float), and nothing else is
guessed: `'abc'` for an int is an error naming the field, the expected type and the value.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any

from garden_core.config.errors import ConfigError, join_path

_NONE_TYPE = type(None)


def type_name(annotation: Any) -> str:
    """A readable name for an annotation, e.g. `list[int]` or `float | None`."""
    if annotation is Any:
        return "any value"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is _NONE_TYPE else type_name(a) for a in args)
    name = getattr(origin, "__name__", str(origin))
    if args:
        return f"{name}[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
    return name


def is_optional(annotation: Any) -> bool:
    """Whether None is a valid value for `annotation`."""
    if annotation is Any or annotation is _NONE_TYPE:
        return True
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and _NONE_TYPE in typing.get_args(annotation)


def _fail(path: str, annotation: Any, value: Any) -> ConfigError:
    return ConfigError(
        f"`{path}` expects {type_name(annotation)}, got {value!r} ({type(value).__name__})"
    )


def coerce(value: Any, annotation: Any, path: str) -> Any:
    """Returns `value` checked against (and converted to) `annotation`.

    Args:
      value: The value to check.
      annotation: The field's type annotation.
      path: The dotted path of the field, for error messages.

    Raises:
      ConfigError: If the value does not fit the annotation.
    """
    from garden_core.config.base import Config  # Config fields may hold configs.

    if annotation is Any or annotation is object:
        return value
    if value is None:
        if is_optional(annotation):
            return None
        raise ConfigError(f"`{path}` expects {type_name(annotation)}, got None")
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is _NONE_TYPE:
                continue
            try:
                return coerce(value, option, path)
            except ConfigError:
                continue
        raise _fail(path, annotation, value)

    if isinstance(annotation, type) and issubclass(annotation, Config):
        if isinstance(value, annotation):
            return value
        if isinstance(value, collections.abc.Mapping):
            return annotation.from_dict(value, path=path)
        raise _fail(path, annotation, value)

    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, annotation, value)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _fail(path, annotation, value)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(path, annotation, value)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _fail(path, annotation, value)

    container = origin or annotation
    if container in (list, tuple, collections.abc.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _fail(path, annotation, value)
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _fail(path, annotation, value)
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [
            coerce(v, t, join_path(path, i))
            for i, (v, t) in enumerate(zip(value, item_types, strict=True))
        ]
        return tuple(items) if container is tuple else items
    if container in (dict, collections.abc.Mapping):
        if not isinstance(value, collections.abc.Mapping):
            raise _fail(path, annotation, value)
        key_type, value_type = args if args else (Any, Any)
        return {
            coerce(k, key_type, path): coerce(v, value_type, join_path(path, str(k)))
            for k, v in value.items()
        }
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _fail(path, annotation, value)
    raise ConfigError(f"`{path}` has an unsupported annotation {annotation!r}")
