"""Checks that a Garden package offers Model Garden's public import paths for what it implements.

A package's tests keep two fixtures in `tests/data/model_garden/`:

- `public_api.json`, written once by `tools/dump_model_garden_api.py` from tf-models-official:
  for each Model Garden module Garden mirrors, its public names and their kinds
  (`class`, `function`, `module`, `constant`);
- `implemented.json`, edited by hand: for each of those modules, the Garden module that
  mirrors it and the Model Garden names Garden implements there.

`load_mappings` reads both and rejects a claim the dump does not back; `import_problems`
imports every implemented name from Garden's module and compares its kind with Model
Garden's; `readme_problems` compares the "From Model Garden" table of the package README with
the fixtures, so its "not offered" notes list exactly the names Garden does not implement.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pathlib
import re
import types
from typing import Any

_ROW = re.compile(r"^\|\s*`(?P<mg>[\w.]+)`\s*\|\s*`(?P<garden>[\w.]+)`\s*\|(?P<notes>.*)\|\s*$")


@dataclasses.dataclass(frozen=True)
class ModuleMapping:
    """One Model Garden module, the Garden module that mirrors it and what Garden offers.

    Attributes:
      model_garden: the Model Garden module (`official.vision.modeling.backbones`).
      garden: Garden's module with the same names (`garden_vision.modeling.backbones`).
      names: Model Garden's public names there, each with its kind.
      implemented: the names of `names` that Garden implements.
    """

    model_garden: str
    garden: str
    names: dict[str, str]
    implemented: tuple[str, ...]

    @property
    def not_offered(self) -> list[str]:
        """Model Garden's names that Garden does not implement, sorted."""
        return sorted(set(self.names) - set(self.implemented))


def kind_of(value: Any) -> str:
    """`class`, `module`, `function` (any other callable) or `constant`: the dump's kinds."""
    if inspect.isclass(value):
        return "class"
    if isinstance(value, types.ModuleType):
        return "module"
    if callable(value):
        return "function"
    return "constant"


def load_mappings(data_dir: str | pathlib.Path) -> list[ModuleMapping]:
    """Reads `public_api.json` and `implemented.json` from `data_dir`, sorted by module.

    Raises:
      ValueError: the two files do not list the same modules, or `implemented.json` claims a
        name that Model Garden does not export from that module (named with its module).
    """
    data_dir = pathlib.Path(data_dir)
    api = json.loads((data_dir / "public_api.json").read_text(encoding="utf-8"))["modules"]
    claims = json.loads((data_dir / "implemented.json").read_text(encoding="utf-8"))["modules"]
    if set(api) != set(claims):
        raise ValueError(
            f"{data_dir}: implemented.json and public_api.json list different modules: "
            f"only in implemented.json {sorted(set(claims) - set(api))}, "
            f"only in public_api.json {sorted(set(api) - set(claims))}"
        )
    mappings = []
    for module in sorted(api):
        implemented = tuple(claims[module]["implemented"])
        unknown = sorted(set(implemented) - set(api[module]))
        if unknown:
            raise ValueError(
                f"{data_dir / 'implemented.json'}: {module} lists {unknown}, which Model Garden "
                "does not export there"
            )
        mappings.append(ModuleMapping(module, claims[module]["garden"], api[module], implemented))
    return mappings


def import_problems(mapping: ModuleMapping) -> list[str]:
    """Imports each implemented name from Garden's module; returns what is missing or unlike.

    A name must import (`from garden_module import name`) and be of Model Garden's kind: a
    class where Model Garden has a class, a function where it has a function, and so on.
    """
    if not mapping.implemented:
        return []
    try:
        module = importlib.import_module(mapping.garden)
    except ImportError as error:
        return [f"{mapping.garden} (for {mapping.model_garden}) does not import: {error}"]
    problems = []
    for name in mapping.implemented:
        where = f"{mapping.garden}.{name} (Model Garden's {mapping.model_garden}.{name})"
        try:
            value = getattr(module, name)
        except (AttributeError, ImportError) as error:
            problems.append(f"{where} is missing: {error}")
            continue
        if kind_of(value) != mapping.names[name]:
            problems.append(
                f"{where} is a {kind_of(value)}, Model Garden's is a {mapping.names[name]}"
            )
    return problems


def readme_rows(readme: str) -> dict[str, tuple[str, list[str]]]:
    """The "From Model Garden" table rows of a README: module -> (Garden module, not offered).

    Rows look like ``| `official.x` | `garden_x` | `A`, `b` |``: every name in backticks in
    the last cell is one that Garden does not offer there ("-" when it offers them all).
    """
    rows = {}
    for line in readme.splitlines():
        match = _ROW.match(line.strip())
        if match and match["mg"].startswith(("official.", "tensorflow_models.")):
            rows[match["mg"]] = (match["garden"], sorted(re.findall(r"`([\w.]+)`", match["notes"])))
    return rows


def readme_row(mapping: ModuleMapping) -> str:
    """The README table row that describes `mapping` (its names not offered, or "-")."""
    notes = ", ".join(f"`{name}`" for name in mapping.not_offered) or "-"
    return f"| `{mapping.model_garden}` | `{mapping.garden}` | {notes} |"


def readme_problems(readme: str, mappings: list[ModuleMapping]) -> list[str]:
    """Where the README's table disagrees with the fixtures, each with the row to write."""
    rows = readme_rows(readme)
    problems = []
    for mapping in mappings:
        expected = (mapping.garden, mapping.not_offered)
        if rows.get(mapping.model_garden) != expected:
            problems.append(
                f"README row for {mapping.model_garden} should be:\n{readme_row(mapping)}"
            )
    for module in sorted(set(rows) - {m.model_garden for m in mappings}):
        problems.append(f"README lists {module}, which the fixtures do not")
    return problems
