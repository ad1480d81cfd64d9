"""Lazy public names for a package's `__init__`: imported on first use (PEP 562).

Garden's packages offer Model Garden's import paths (`garden_vision.modeling.backbones.ResNet`,
`garden_nlp.modeling.networks.BertEncoder`) and short namespaces (`garden_vision.backbones`)
without importing TensorFlow or Keras when the package itself is imported: each `__init__`
declares a table of where its names live, and a name's module is imported only when the name
is first asked for.

    from garden_core.lazy_exports import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(
        __name__,
        {
            "ResNet": ".resnet:ResNet",  # a class or function: "module:attribute"
            "layers": "garden_vision.modeling.layers",  # a module: its path
        },
    )

A path that starts with "." is relative to the package. Besides the table, every submodule
of the package is reachable as an attribute (`garden_vision.ops.augment` without importing
it first), as `from package import submodule` already allows.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # `typing` itself is not imported: it would double the import time.
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def _is_target(target: str) -> bool:
    """Whether `target` is `module.path` or `module.path:attribute` (module may start with .)."""
    module_path, colon, attribute = target.partition(":")
    parts = module_path.removeprefix(".").split(".")
    if not all(part.isidentifier() for part in parts):
        return False
    return not colon or attribute.isidentifier()


def _absolute(package: str, module_path: str) -> str:
    return package + module_path if module_path.startswith(".") else module_path


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Returns a package's `__getattr__`, `__dir__` and `__all__` for a table of lazy names.

    Args:
      package: the package's `__name__`.
      exports: public name -> where it lives: `"module.path:attribute"` for an object in a
        module, `"module.path"` for a module itself; a leading "." makes the module path
        relative to `package`.

    Returns:
      `(__getattr__, __dir__, __all__)` to assign at the package's top level. `__getattr__`
      imports a name's module on first use and caches the value in the package; `__all__`
      lists the table's names (sorted), so `from package import *` imports them all.

    Raises:
      ValueError: a table entry is malformed (private name, or a target that is neither
        `module.path` nor `module.path:attribute`), naming the entry and the package.
    """
    for name, target in exports.items():
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"{package}: lazy export {name!r} is not a public identifier")
        if not _is_target(target):
            raise ValueError(
                f"{package}: lazy export {name!r} -> {target!r}: expected 'module.path' or "
                "'module.path:attribute'"
            )
    table = dict(exports)

    def __getattr__(name: str) -> Any:  # noqa: N807  (the PEP 562 hook's name)
        module = sys.modules[package]
        if name in table:
            module_path, _, attribute = table[name].partition(":")
            source = importlib.import_module(_absolute(package, module_path))
            if not attribute:
                value = source
            elif hasattr(source, attribute):
                value = getattr(source, attribute)
            else:
                raise ImportError(
                    f"{package}.{name} is exported from {source.__name__}, which has no "
                    f"{attribute!r}"
                )
        elif _is_submodule(module, name):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807  (the PEP 562 hook's name)
        module = sys.modules[package]
        return sorted(set(vars(module)) | set(table) | set(_submodules(module)))

    return __getattr__, __dir__, sorted(table)


def _submodules(module: Any) -> list[str]:
    import pkgutil  # Only when asked: keeps importing a package cheap.

    path = getattr(module, "__path__", None)
    if path is None:
        return []
    return [info.name for info in pkgutil.iter_modules(path) if not info.name.startswith("_")]


def _is_submodule(module: Any, name: str) -> bool:
    if name.startswith("_") or getattr(module, "__path__", None) is None:
        return False
    import importlib.util  # Only when asked: keeps importing a package cheap.

    return importlib.util.find_spec(f"{module.__name__}.{name}") is not None
