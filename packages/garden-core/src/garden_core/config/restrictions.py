"""Restrictions: declarative checks between config values, such as `a.b <= c.d`.

A restriction compares two operands with one of `==`, `!=`, `<`, `<=`, `>`, `>=`. An operand
is a dotted path into the config that declares the restriction, or a constant: a number
(`1`, `-2.5`, `1e-4`), `None`/`null`, `true`/`false`, or a quoted string.
"""

from __future__ import annotations

import operator
import re
from typing import Any

from garden_core.config.errors import ConfigError

_OPERATORS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_SPLIT = re.compile(r"\s*(<=|>=|==|!=|<|>)\s*")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MISSING = object()


def _constant(token: str) -> Any:
    if token in ("None", "null", "none"):
        return None
    if token in ("true", "True"):
        return True
    if token in ("false", "False"):
        return False
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    if _NUMBER.match(token):
        number = float(token)
        return int(number) if re.match(r"^[+-]?\d+$", token) else number
    return _MISSING


def parse_restriction(restriction: str) -> tuple[str, str, str]:
    """Splits a restriction into (left, operator, right) operand texts.

    Raises:
      ConfigError: If it does not hold exactly one comparison between two operands.
    """
    parts = _SPLIT.split(restriction.strip())
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise ConfigError(
            f"restriction `{restriction}` must compare two operands with one of "
            + ", ".join(_OPERATORS)
        )
    return parts[0], parts[1], parts[2]


def _resolve(config: Any, token: str, restriction: str) -> Any:
    value = _constant(token)
    if value is not _MISSING:
        return value
    if not _PATH.match(token):
        raise ConfigError(
            f"restriction `{restriction}`: `{token}` is neither a path nor a constant"
        )
    current = config
    for part in token.split("."):
        if not hasattr(current, part):
            raise ConfigError(f"restriction `{restriction}`: the config has no `{token}`")
        current = getattr(current, part)
    return current


def check_restriction(config: Any, restriction: str, path: str = "") -> None:
    """Raises a `ConfigError` unless `restriction` holds for `config`.

    Args:
      config: The config that declares the restriction (paths are relative to it).
      restriction: The restriction text, e.g. `"train_steps >= validation_interval"`.
      path: Where `config` sits in the whole config, for the message.
    """
    left_text, op, right_text = parse_restriction(restriction)
    left = _resolve(config, left_text, restriction)
    right = _resolve(config, right_text, restriction)
    where = f" in `{path}`" if path else ""
    try:
        holds = _OPERATORS[op](left, right)
    except TypeError:
        holds = False
    if not holds:
        raise ConfigError(
            f"restriction `{restriction}`{where} does not hold: "
            f"{left_text} = {left!r}, {right_text} = {right!r}"
        )
