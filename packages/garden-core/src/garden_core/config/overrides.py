"""Override strings in Model Garden's grammar, and applying overrides from any source.

    a.b=1,c.d=[1,2],e='text, with a comma',f=1e-4,g=true,h=null,i=adamw

Items are separated by commas outside quotes and brackets. A key is a dotted path. A value
is a quoted string (single or double quotes, backslash escapes the quote), a one-level list
in brackets, `true`/`false`, `null`/`None`, an int, a float (scientific notation included),
or else a bare string. Parsing never evaluates code: anything it cannot read is a
`ConfigError` that names the position and the item.
"""

from __future__ import annotations

import collections.abc
import os
import re
from typing import Any

import yaml

from garden_core.config.base import Config, expand_dotted_keys, load_mapping_file
from garden_core.config.errors import ConfigError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)


def _split_top_level(text: str, separator: str, offset: int, what: str) -> list[tuple[int, str]]:
    """Splits on `separator` outside quotes and brackets; returns (position, piece) pairs."""
    pieces, start, depth, quote, escaped = [], 0, 0, None, False
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"{what}: unmatched `]` at position {offset + i}")
        elif char == separator and depth == 0:
            pieces.append((offset + start, text[start:i]))
            start = i + 1
    if quote:
        raise ConfigError(f"{what}: unterminated {quote}-quoted string")
    if depth:
        raise ConfigError(f"{what}: unterminated `[` list")
    pieces.append((offset + start, text[start:]))
    return pieces


def _unquote(token: str, where: str) -> str:
    quote, body = token[0], token[1:-1]
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        if char == quote:
            raise ConfigError(f"{where}: unescaped {quote} inside a quoted string")
        out.append(char)
        i += 1
    return "".join(out)


def _scalar(token: str, where: str) -> Any:
    token = token.strip()
    if not token:
        raise ConfigError(f"{where}: missing value")
    if token[0] in "'\"":
        if len(token) < 2 or token[-1] != token[0]:
            raise ConfigError(f"{where}: badly quoted string {token!r}")
        return _unquote(token, where)
    if token in ("true", "True"):
        return True
    if token in ("false", "False"):
        return False
    if token in ("null", "None", "none", "~"):
        return None
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token)
    if any(c in token for c in "[]'\"="):
        raise ConfigError(f"{where}: cannot read value {token!r}")
    return token


def _value(token: str, position: int, where: str) -> Any:
    token = token.strip()
    if token.startswith("["):
        if not token.endswith("]"):
            raise ConfigError(f"{where}: a list must end with `]`")
        inner = token[1:-1]
        if not inner.strip():
            return []
        items = _split_top_level(inner, ",", position + 1, where)
        values = []
        for item_position, item in items:
            if item.strip().startswith("["):
                raise ConfigError(f"{where}: nested lists are not supported (one level only)")
            values.append(_scalar(item, f"{where}, list item at position {item_position}"))
        return values
    return _scalar(token, where)


def parse_override_string(text: str) -> dict[str, Any]:
    """Parses `a.b=1,c=[1,2],d='x'` into a nested dict `{"a": {"b": 1}, "c": [1, 2], ...}`.

    Raises:
      ConfigError: Naming the position and item that could not be read.
    """
    if not isinstance(text, str):
        raise ConfigError(f"override string must be a string, got {text!r}")
    flat: dict[str, Any] = {}
    if not text.strip():
        return flat
    for position, item in _split_top_level(text, ",", 0, "override string"):
        where = f"override item {item.strip()!r} at position {position}"
        if not item.strip():
            raise ConfigError(f"{where}: empty item (two commas in a row, or a trailing comma)")
        parts = _split_top_level(item, "=", position, where)
        if len(parts) != 2:
            raise ConfigError(f"{where}: expected `key=value`")
        (_, key), (value_position, value) = parts
        key = key.strip()
        if not _KEY.match(key):
            raise ConfigError(f"{where}: `{key}` is not a dotted key such as `trainer.train_steps`")
        if key in flat:
            raise ConfigError(f"{where}: `{key}` is set twice")
        flat[key] = _value(value, value_position, where)
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node, parts = nested, key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override string: `{'.'.join(parts[: i + 1])}` is set to a value and also "
                    f"used as the parent of `{key}`"
                )
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ConfigError(
                f"override string: `{key}` is set to a value and also used as a parent"
            )
        node[parts[-1]] = value
    return nested


def read_overrides(source: str | collections.abc.Mapping | Config | None) -> dict[str, Any]:
    """Reads overrides from a mapping, a config, a YAML/JSON file path, YAML text or a string.

    A string naming an existing `.yaml`, `.yml` or `.json` file is read as that file; a
    string holding a YAML mapping (`a: 1` lines or `{a: 1}`) is read as YAML; anything else
    is parsed with the `a.b=1,c=2` grammar.
    """
    if source is None:
        return {}
    if isinstance(source, Config):
        return source.as_dict()
    if isinstance(source, collections.abc.Mapping):
        return expand_dotted_keys(source)
    if not isinstance(source, str):
        raise ConfigError(f"overrides must be a mapping or a string, got {source!r}")
    text = source.strip()
    if text.endswith((".yaml", ".yml", ".json")) and os.path.isfile(text):
        return expand_dotted_keys(load_mapping_file(text))
    if "=" not in text and ":" in text:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"overrides: invalid YAML ({getattr(e, 'problem', e)})") from e
        if not isinstance(data, dict):
            raise ConfigError(f"overrides: expected a YAML mapping, got {data!r}")
        return expand_dotted_keys(data)
    return parse_override_string(text)


def override_config(
    config: Config,
    config_files: collections.abc.Sequence[str] = (),
    params_override: str | collections.abc.Mapping | None = None,
    is_strict: bool = True,
) -> Config:
    """Applies config files in order, then `params_override`, to `config` (in place).

    Returns:
      The same config, for chaining.
    """
    for file_path in config_files:
        config.override(load_mapping_file(file_path), is_strict=is_strict)
    config.override(read_overrides(params_override), is_strict=is_strict)
    return config
