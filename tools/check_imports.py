"""Checks what importing one installed Garden package loads: the import graph, enforced.

Usage: `python tools/check_imports.py NAME`, run by `nox -s isolation` inside a fresh venv
that holds only the wheel of `garden-NAME` and its requirements. It imports `garden_NAME` and
then every one of its submodules (`pkgutil.walk_packages`), one after the other in this very
process, and after each import looks at what `sys.modules` gained, so a forbidden import is
reported with the module that made it:

- `garden_orbit` must load no Keras (`keras`, `keras.*`, `tf_keras`) and no other Garden
  package: orbit is the training loop beneath everything and depends on TensorFlow only.
- `garden_core` must load none of `garden_vision`, `garden_nlp`, `garden_research`.
- `garden_vision` must load neither `garden_nlp` nor `garden_research`, and
  `garden_nlp` neither `garden_vision` nor `garden_research`.
- `garden_research` sits on top and may load anything.
- `garden_*.testing` modules (shared test helpers) must not load pytest: they serve any test
  runner, and pytest is no requirement of any package.

A submodule that needs an optional extra of the package (e.g. `sentencepiece` for
`garden-nlp[sentencepiece]`) and fails with ModuleNotFoundError for it is listed as skipped,
not as a failure; any other import error is a failure.

It also checks that `importlib.metadata.version("garden-NAME")` equals
`garden_NAME.__version__`, and that the module came from the installed distribution (not
from a source tree that happens to be on `sys.path`). It prints what it checked and exits 1
with the offending modules listed otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import pkgutil
import re
import sys
import traceback
from pathlib import Path

GARDEN_PACKAGES = ("orbit", "core", "vision", "nlp", "research")
KERAS_MODULES = ("keras", "tf_keras")

# The top-level modules each package must not load when imported alone.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "orbit": (*KERAS_MODULES, "garden_core", "garden_vision", "garden_nlp", "garden_research"),
    "core": ("garden_vision", "garden_nlp", "garden_research"),
    "vision": ("garden_nlp", "garden_research"),
    "nlp": ("garden_vision", "garden_research"),
    "research": (),
}


def offending_modules(loaded: list[str], forbidden: tuple[str, ...]) -> list[str]:
    """Returns the loaded modules that are, or live inside, a forbidden top-level module.

    Args:
        loaded: Module names, as in `sys.modules`.
        forbidden: Top-level module names, e.g. `("keras", "garden_nlp")`.

    Returns:
        The sorted names from `loaded` equal to a forbidden name or starting with it plus a
        dot (so `keras.layers` is caught but `keras_hub_helper` is not).
    """
    return sorted(
        module
        for module in loaded
        if any(module == top or module.startswith(top + ".") for top in forbidden)
    )


TEST_RUNNER_MODULES = ("pytest", "_pytest")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def optional_requirements(distribution: str) -> set[str]:
    """The normalized names of the requirements `distribution` declares only for extras."""
    names = set()
    for requirement in importlib.metadata.requires(distribution) or []:
        name, _, marker = requirement.partition(";")
        if "extra" in marker:
            names.add(_normalize(re.split(r"[\s\[<>=!~(]", name.strip(), maxsplit=1)[0]))
    return names


@dataclasses.dataclass
class WalkResult:
    """What importing a package and all its submodules did.

    Attributes:
      imported: The modules imported, in order.
      offenders: Module -> the forbidden modules that its import loaded first.
      failures: Module -> the error its import raised (a traceback's last line).
      skipped: Module -> the missing optional requirement it needs.
    """

    imported: list[str] = dataclasses.field(default_factory=list)
    offenders: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)


def walk_imports(
    package_name: str, forbidden: tuple[str, ...], optional: set[str] = frozenset()
) -> WalkResult:
    """Imports `package_name` and every submodule; records what each import loaded.

    Args:
      package_name: A top-level package, e.g. "garden_vision".
      forbidden: Top-level module names no module of the package may load.
      optional: Normalized distribution names of optional requirements: a submodule that
        fails because one of them is missing is skipped, not failed.

    Returns:
      A `WalkResult`. A module under `.testing` must also not load pytest.
    """
    result = WalkResult()

    def try_import(name: str) -> bool:
        before = set(sys.modules)
        rules = forbidden
        if "testing" in name.split(".")[1:]:
            rules = (*forbidden, *TEST_RUNNER_MODULES)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            missing = (error.name or "").split(".")[0]
            if missing and _normalize(missing) in optional:
                result.skipped[name] = missing
            else:
                result.failures[name] = f"{type(error).__name__}: {error}"
            return False
        except Exception as error:  # Any failure is reported, with its traceback.
            traceback.print_exc()
            result.failures[name] = f"{type(error).__name__}: {error} (traceback above)"
            return False
        result.imported.append(name)
        new = offending_modules([m for m in sys.modules if m not in before], rules)
        if new:
            result.offenders[name] = new
        return True

    if not try_import(package_name):
        return result
    package = sys.modules[package_name]
    for info in pkgutil.walk_packages(
        getattr(package, "__path__", []), prefix=f"{package_name}.", onerror=lambda name: None
    ):
        done = info.name in result.imported or info.name in result.failures
        if not done and info.name not in result.skipped:
            try_import(info.name)
    return result


def _module_comes_from_distribution(module_file: str, distribution: str) -> bool:
    """Says whether `module_file` is one of the files installed by `distribution`."""
    files = importlib.metadata.distribution(distribution).files or []
    target = Path(module_file).resolve()
    return any(Path(str(file.locate())).resolve() == target for file in files)


def check(name: str) -> list[str]:
    """Imports `garden_NAME` and returns the problems found (an empty list when all is well).

    Prints one line describing what was checked when there is no problem.
    """
    module_name = f"garden_{name}"
    distribution = f"garden-{name}"
    walk = walk_imports(module_name, FORBIDDEN[name], optional_requirements(distribution))
    if module_name not in walk.imported:
        return [f"`import {module_name}` failed: {walk.failures.get(module_name)}"]
    module = sys.modules[module_name]

    problems = []
    for importer, offenders in walk.offenders.items():
        shown = ", ".join(offenders[:10])
        if len(offenders) > 10:
            shown += f", ... ({len(offenders) - 10} more)"
        problems.append(f"importing {importer} loaded forbidden module(s): {shown}")
    for failed, error in walk.failures.items():
        problems.append(f"`import {failed}` failed: {error}")

    version = getattr(module, "__version__", None)
    installed = importlib.metadata.version(distribution)
    if version != installed:
        problems.append(
            f"{module_name}.__version__ is {version!r} but the installed {distribution} "
            f"distribution is {installed!r}"
        )
    module_file = getattr(module, "__file__", None) or ""
    if not _module_comes_from_distribution(module_file, distribution):
        problems.append(
            f"{module_name} was imported from {module_file or 'nowhere'}, which is not a file of "
            f"the installed {distribution} distribution"
        )

    if not problems:
        if FORBIDDEN[name]:
            banned = ", ".join(FORBIDDEN[name])
            verdict = f"none of {banned}"
        else:
            verdict = "any package allowed"
        skipped = "".join(
            f"; skipped {module} (needs the optional {requirement})"
            for module, requirement in walk.skipped.items()
        )
        print(
            f"{module_name} {version}: {len(walk.imported)} modules imported, {len(sys.modules)} "
            f"loaded, {verdict}; __version__ matches the installed {distribution} metadata"
            f"{skipped}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Runs the check for one package and returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=GARDEN_PACKAGES, help="short package name, e.g. core")
    args = parser.parse_args(argv)
    problems = check(args.name)
    for problem in problems:
        print(f"check_imports: garden-{args.name}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
