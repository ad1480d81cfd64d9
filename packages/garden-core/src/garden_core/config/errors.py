"""The one error type of the config system: every message names the dotted path at fault."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A config, override or config file is invalid; the message says where and why."""


class UnknownKeyError(ConfigError, KeyError):
    """A key that the config does not have; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would show the message in quotes.
        return str(self.args[0]) if self.args else ""


def join_path(path: str, key: str | int) -> str:
    """Appends a key (or a list index) to a dotted path."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def unknown_key(path: str, key: str, known: Iterable[str]) -> UnknownKeyError:
    """Builds the error for `key` missing from the config at `path`."""
    known = sorted(known)
    where = join_path(path, key)
    matches = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if matches:
        hint = "did you mean " + " or ".join(f"`{m}`" for m in matches) + "?"
    else:
        hint = "valid keys: " + ", ".join(known) if known else "it has no keys"
    return UnknownKeyError(f"unknown key `{where}`: {hint}")
