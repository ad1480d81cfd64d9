"""Entry-point registries: how Garden packages and third-party packages find each other.

Each registry is one entry-point group, `garden.<kind>`. A distribution offers a name with a
line in its pyproject.toml:

    [project.entry-points."garden.experiments"]
    my_experiment = "my_package.experiments:my_experiment"

Listing names reads distribution metadata only: it imports no provider and no TensorFlow, so
`garden list` is fast. `get(name)` imports the one module that provides the name.
`register` adds names in-process, for notebooks and tests.

Rules: a name offered by two distributions is an error naming both; an unknown name is an
error listing close matches; a provider that fails to import is reported with its
distribution and the error, without affecting other names; `GARDEN_DISABLE_PLUGINS` (a
comma-separated list of distribution names, or `*`) turns off third-party providers.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable
from typing import Any

KINDS = (
    "experiments",
    "tasks",
    "backbones",
    "decoders",
    "heads",
    "models",
    "encoders",
    "optimizers",
    "schedules",
)
# Distributions that ship with Garden; every other provider is a third-party plugin.
GARDEN_DISTRIBUTIONS = frozenset(
    {"garden-core", "garden-orbit", "garden-vision", "garden-nlp", "garden-research"}
)
DISABLE_ENV = "GARDEN_DISABLE_PLUGINS"
IN_PROCESS = "<registered in-process>"


class RegistryError(LookupError):
    """A name cannot be resolved: unknown, offered twice, or its provider failed to load."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _normalize(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One provider of a name: where it comes from, without importing it.

    Attributes:
      name: The registered name.
      kind: The registry kind, e.g. "experiments".
      target: "module:attribute" for entry points, or a description for in-process entries.
      distribution: The providing distribution's name, or "<registered in-process>".
      version: The distribution's version ("" for in-process entries).
    """

    name: str
    kind: str
    target: str
    distribution: str
    version: str

    @property
    def is_third_party(self) -> bool:
        return (
            self.distribution != IN_PROCESS
            and _normalize(self.distribution) not in GARDEN_DISTRIBUTIONS
        )


@functools.cache
def _all_entry_points() -> importlib.metadata.EntryPoints:
    """Every installed entry point, read once per process (see `refresh`)."""
    return importlib.metadata.entry_points()


def refresh() -> None:
    """Forgets the entry points read so far, e.g. after installing a plugin in-process."""
    _all_entry_points.cache_clear()
    importlib.invalidate_caches()


def disabled_distributions() -> set[str] | None:
    """Distributions disabled by GARDEN_DISABLE_PLUGINS; None means all third-party ones."""
    value = os.environ.get(DISABLE_ENV, "").strip()
    if value == "*":
        return None
    return {_normalize(part) for part in value.split(",") if part.strip()}


class Registry:
    """The names of one kind (`garden.<kind>` entry points plus in-process registrations)."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}; expected one of {', '.join(KINDS)}")
        self.kind = kind
        self.group = f"garden.{kind}"
        self._local: dict[str, Any] = {}
        self._loaded: dict[tuple[str, str], Any] = {}

    # Listing (no imports).

    def _entry_points(self) -> list[importlib.metadata.EntryPoint]:
        disabled = disabled_distributions()
        found = []
        for entry_point in _all_entry_points().select(group=self.group):
            distribution = entry_point.dist.name if entry_point.dist else "<unknown>"
            third_party = _normalize(distribution) not in GARDEN_DISTRIBUTIONS
            if third_party and (disabled is None or _normalize(distribution) in disabled):
                continue
            found.append(entry_point)
        return found

    def providers(self) -> dict[str, list[Entry]]:
        """Every name with all its providers (more than one means a conflict)."""
        providers: dict[str, list[Entry]] = {}
        seen: set[tuple[str, str]] = set()
        for entry_point in self._entry_points():
            dist = entry_point.dist
            key = (entry_point.name, dist.name if dist else "")
            if key in seen:  # The same distribution seen twice on sys.path.
                continue
            seen.add(key)
            providers.setdefault(entry_point.name, []).append(
                Entry(
                    name=entry_point.name,
                    kind=self.kind,
                    target=entry_point.value,
                    distribution=dist.name if dist else "<unknown>",
                    version=dist.version if dist else "",
                )
            )
        for name, value in self._local.items():
            providers[name] = [
                Entry(name, self.kind, _describe(value), IN_PROCESS, "")
            ]  # An in-process registration replaces entry points of the same name.
        return dict(sorted(providers.items()))

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, optionally filtered by a shell-style wildcard pattern."""
        names = list(self.providers())
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def __contains__(self, name: str) -> bool:
        return name in self.providers()

    # Lookup (imports one provider).

    def entry(self, name: str) -> Entry:
        """The single provider of `name`.

        Raises:
          RegistryError: If the name is unknown (close matches listed) or offered twice.
        """
        providers = self.providers()
        if name not in providers:
            matches = difflib.get_close_matches(name, list(providers), n=3, cutoff=0.5)
            hint = (
                "did you mean " + " or ".join(f"`{m}`" for m in matches) + "?"
                if matches
                else f"see `garden list {self.kind}`"
            )
            raise RegistryError(f"unknown {self.kind[:-1]} `{name}`: {hint}")
        found = providers[name]
        if len(found) > 1:
            offered = " and ".join(f"{e.distribution} {e.version} ({e.target})" for e in found)
            raise RegistryError(
                f"{self.kind[:-1]} `{name}` is offered by more than one distribution: "
                f"{offered}; uninstall one, or disable it with {DISABLE_ENV}"
            )
        return found[0]

    def get(self, name: str) -> Any:
        """Returns the object registered as `name`, importing only its provider.

        Raises:
          RegistryError: For an unknown or duplicated name, or a provider that fails to
            import (the message names its distribution and the error).
        """
        if name in self._local:
            return self._local[name]
        entry = self.entry(name)
        key = (entry.distribution, entry.target)
        if key not in self._loaded:
            try:
                self._loaded[key] = _load(entry.target)
            except Exception as error:  # noqa: BLE001  (any import-time failure)
                message = (
                    f"{self.kind[:-1]} `{name}` from {entry.distribution} {entry.version} "
                    f"failed to load ({entry.target}): {type(error).__name__}: {error}"
                )
                logging.getLogger(__name__).warning(message)
                raise RegistryError(message) from error
        return self._loaded[key]

    # In-process registration.

    def register(
        self, name: str, value: Any = None, *, override: bool = False
    ) -> Callable[[Any], Any] | Any:
        """Registers `value` as `name` in this process; usable as a decorator.

            @registry.register("my_experiment")
            def my_experiment() -> ExperimentConfig: ...

        Args:
          name: The name to register.
          value: The object; omit it to use `register` as a decorator.
          override: Replace an existing in-process registration or entry point of that name.

        Raises:
          RegistryError: If the name is taken and `override` is False.
        """

        def add(obj: Any) -> Any:
            if not override:
                if name in self._local:
                    raise RegistryError(
                        f"{self.kind[:-1]} `{name}` is already registered in this process "
                        "(pass override=True to replace it)"
                    )
                existing = self.providers().get(name)
                if existing:
                    raise RegistryError(
                        f"{self.kind[:-1]} `{name}` is already offered by "
                        f"{existing[0].distribution} (pass override=True to replace it)"
                    )
            self._local[name] = obj
            return obj

        return add if value is None else add(value)

    def unregister(self, name: str) -> None:
        """Removes an in-process registration."""
        self._local.pop(name, None)


def _describe(value: Any) -> str:
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    return f"{module}:{qualname}" if module and qualname else repr(value)


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in filter(None, attribute.strip().split(".")):
        obj = getattr(obj, part)
    return obj


_REGISTRIES: dict[str, Registry] = {}


def registry(kind: str) -> Registry:
    """The process-wide registry of `kind` (one of `KINDS`)."""
    if kind not in _REGISTRIES:
        _REGISTRIES[kind] = Registry(kind)
    return _REGISTRIES[kind]


experiments = registry("experiments")
tasks = registry("tasks")
backbones = registry("backbones")
decoders = registry("decoders")
heads = registry("heads")
models = registry("models")
encoders = registry("encoders")
optimizers = registry("optimizers")
schedules = registry("schedules")
