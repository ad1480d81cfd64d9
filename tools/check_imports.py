"""Checks what importing one installed Garden package loads: the import graph, enforced.

Usage: `python tools/check_imports.py NAME`, run by `nox -s isolation` inside a fresh venv
that holds only the wheel of `garden-NAME` and its requirements. It imports `garden_NAME` in
this very process and then looks at `sys.modules`:

- `garden_orbit` must load no Keras (`keras`, `keras.*`, `tf_keras`) and no other Garden
  package: orbit is the training loop beneath everything and depends on TensorFlow only.
- `garden_core` must load none of `garden_vision`, `garden_nlp`, `garden_research`.
- `garden_vision` must load neither `garden_nlp` nor `garden_research`, and
  `garden_nlp` neither `garden_vision` nor `garden_research`.
- `garden_research` sits on top and may load anything.

It also checks that `importlib.metadata.version("garden-NAME")` equals
`garden_NAME.__version__`, and that the module came from the installed distribution (not
from a source tree that happens to be on `sys.path`). It prints what it checked and exits 1
with the offending modules listed otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
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
    try:
        module = importlib.import_module(module_name)
    except Exception:  # Any failure is reported the same way: with its traceback.
        traceback.print_exc()
        return [f"`import {module_name}` failed (traceback above)"]
    loaded = list(sys.modules)

    problems = []
    offenders = offending_modules(loaded, FORBIDDEN[name])
    if offenders:
        shown = ", ".join(offenders[:20])
        if len(offenders) > 20:
            shown += f", ... ({len(offenders) - 20} more)"
        problems.append(
            f"importing {module_name} loaded {len(offenders)} forbidden module(s): {shown}"
        )

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
        print(
            f"{module_name} {version}: {len(loaded)} modules loaded, {verdict}; "
            f"__version__ matches the installed {distribution} metadata"
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
