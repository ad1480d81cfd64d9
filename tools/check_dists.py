"""Checks the wheels and sdists that `nox -s build` wrote before anyone installs them.

Usage: `python tools/check_dists.py DIST_DIR NAME...`, where each NAME is a Garden package
(`orbit`, `core`, `vision`, `nlp`, `research`). For each package it checks that DIST_DIR holds
exactly one wheel and one sdist of `garden-NAME`, and that the wheel's METADATA says what the
sources say:

- `Name` is `garden-NAME` and `Version` is the `__version__` in
  `packages/garden-NAME/src/garden_NAME/__about__.py` (the sdist's PKG-INFO agrees too);
- the wheel holds the `garden_NAME` package itself;
- the `garden-*` requirements (`Requires-Dist`) are exactly the ones in the package's
  `pyproject.toml`, and each is a range with a lower and an upper bound: packages version
  independently, so a sibling pinned with `==` or left unbounded breaks the release train.

It prints one line per good package and exits 1 after listing every problem it found. It
needs only the standard library, so it runs in any environment that can build.
"""

from __future__ import annotations

import argparse
import ast
import email.parser
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: hatch depends on tomli, so the build venv has it.
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_DIR = ROOT / "packages"
KNOWN_PACKAGES = ("orbit", "core", "vision", "nlp", "research")

# PEP 508 in the forms Garden uses: `name[extra1,extra2] (specifiers) ; marker`.
_REQUIREMENT = re.compile(
    r"""^\s*
    (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)
    \s*(?:\[(?P<extras>[^\]]*)\])?
    \s*\(?(?P<specifiers>[^;()]*)\)?
    \s*(?:;\s*(?P<marker>.+))?$""",
    re.VERBOSE,
)
_SPECIFIER = re.compile(r"^(?P<operator>~=|===|==|!=|<=|>=|<|>)\s*(?P<version>\S+)$")
_EXTRA_MARKER = re.compile(r"""^extra\s*==\s*['"](?P<extra>[^'"]+)['"]$""")
_LOWER_BOUNDS = {">=", ">", "~="}
_UPPER_BOUNDS = {"<", "<=", "~="}


class CheckError(Exception):
    """A problem with one package's distributions; the message names what is wrong."""


@dataclass(frozen=True, order=True)
class Requirement:
    """A requirement reduced to what is compared: project, extra it belongs to, specifiers.

    Attributes:
        name: Normalized project name (PEP 503: lower case, runs of `-_.` become `-`).
        extra: The extra of the requiring package that adds this requirement, or "" for a
            requirement that is always installed.
        specifiers: Version specifiers, whitespace removed, lower bounds first, e.g.
            `(">=0.1", "<0.2")`.
    """

    name: str
    extra: str
    specifiers: tuple[str, ...]

    def __str__(self) -> str:
        text = self.name + ",".join(self.specifiers)
        if self.extra:
            text += f" (extra {self.extra!r})"
        return text


def _specifier_order(specifier: str) -> tuple[int, str]:
    """Sorts lower bounds before upper bounds, so `>=0.1,<0.2` reads as written."""
    match = _SPECIFIER.match(specifier)
    operator = match.group("operator") if match else ""
    order = [">=", ">", "~=", "==", "===", "!=", "<=", "<"]
    return (order.index(operator) if operator in order else len(order), specifier)


def normalize_name(name: str) -> str:
    """Returns the PEP 503 normalized form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> Requirement:
    """Parses a PEP 508 requirement string as written in pyproject.toml or METADATA.

    Args:
        text: For example `garden-core>=0.1,<0.2` or `pycocotools>=2.0.8; extra == "coco"`.

    Returns:
        The parsed requirement. An `extra == "x"` marker becomes `extra="x"`; other markers
        are kept out of the comparison.

    Raises:
        CheckError: If the string is not a requirement this script understands.
    """
    match = _REQUIREMENT.match(text)
    if not match:
        raise CheckError(f"cannot parse requirement {text!r}")
    specifiers = tuple(
        sorted(
            (
                re.sub(r"\s+", "", part)
                for part in match.group("specifiers").split(",")
                if part.strip()
            ),
            key=_specifier_order,
        )
    )
    extra = ""
    marker = (match.group("marker") or "").strip()
    extra_match = _EXTRA_MARKER.match(marker)
    if extra_match:
        extra = normalize_name(extra_match.group("extra"))
    return Requirement(normalize_name(match.group("name")), extra, specifiers)


def range_problem(requirement: Requirement) -> str | None:
    """Says why a sibling requirement is not a bounded range, or returns None if it is one."""
    operators = []
    for specifier in requirement.specifiers:
        match = _SPECIFIER.match(specifier)
        if not match:
            return f"cannot parse version specifier {specifier!r}"
        operators.append(match.group("operator"))
    if "==" in operators or "===" in operators:
        return "is pinned with '==': depend on a sibling by range, e.g. '>=0.1,<0.2'"
    if not _LOWER_BOUNDS.intersection(operators):
        return "has no lower bound ('>=', '>' or '~=')"
    if not _UPPER_BOUNDS.intersection(operators):
        return "has no upper bound ('<', '<=' or '~=')"
    return None


def source_version(name: str) -> str:
    """Returns `__version__` from the package's `__about__.py`, read without importing it."""
    about = PACKAGES_DIR / f"garden-{name}" / "src" / f"garden_{name}" / "__about__.py"
    if not about.is_file():
        raise CheckError(f"{about} does not exist")
    for node in ast.parse(about.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise CheckError(f'{about} has no `__version__ = "..."` string assignment')


def declared_garden_requirements(name: str) -> set[Requirement]:
    """Returns the `garden-*` requirements in the package's pyproject.toml, extras included."""
    pyproject = PACKAGES_DIR / f"garden-{name}" / "pyproject.toml"
    with pyproject.open("rb") as file:
        project = tomllib.load(file).get("project", {})
    texts = [(text, "") for text in project.get("dependencies", [])]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        texts += [(text, normalize_name(extra)) for text in requirements]
    found = set()
    for text, extra in texts:
        requirement = parse_requirement(text)
        if requirement.name.startswith("garden-"):
            found.add(Requirement(requirement.name, extra, requirement.specifiers))
    return found


def _single(dist_dir: Path, pattern: str, kind: str, name: str) -> Path:
    found = sorted(dist_dir.glob(pattern))
    if len(found) != 1:
        listed = ", ".join(path.name for path in found) or "none"
        raise CheckError(f"expected exactly one {kind} of garden-{name}, found {listed}")
    return found[0]


def _parse_metadata(text: str) -> Message:
    return email.parser.Parser().parsestr(text, headersonly=True)


def read_wheel(wheel: Path, name: str) -> Message:
    """Returns the wheel's METADATA, after checking that the wheel holds `garden_NAME`."""
    with zipfile.ZipFile(wheel) as archive:
        members = archive.namelist()
        metadata_files = [m for m in members if re.fullmatch(r"[^/]+\.dist-info/METADATA", m)]
        if len(metadata_files) != 1:
            raise CheckError(f"{wheel.name} holds {len(metadata_files)} METADATA files, not 1")
        if f"garden_{name}/__init__.py" not in members:
            raise CheckError(f"{wheel.name} does not contain garden_{name}/__init__.py")
        return _parse_metadata(archive.read(metadata_files[0]).decode("utf-8"))


def read_sdist(sdist: Path) -> Message:
    """Returns the top-level PKG-INFO of an sdist (`NAME-VERSION/PKG-INFO`)."""
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and re.fullmatch(r"[^/]+/PKG-INFO", member.name):
                extracted = archive.extractfile(member)
                if extracted is not None:
                    return _parse_metadata(extracted.read().decode("utf-8"))
    raise CheckError(f"{sdist.name} has no top-level PKG-INFO")


def check_package(dist_dir: Path, name: str) -> str:
    """Checks one package's wheel and sdist in `dist_dir`.

    Args:
        dist_dir: The folder `hatch build` wrote into.
        name: The short package name, e.g. `core`.

    Returns:
        A one-line summary: distribution name, version and Garden requirements.

    Raises:
        CheckError: On the first problem found, with a message that says what is wrong.
    """
    wheel = _single(dist_dir, f"garden_{name}-*.whl", "wheel", name)
    sdist = _single(dist_dir, f"garden_{name}-*.tar.gz", "sdist", name)
    metadata = read_wheel(wheel, name)
    expected_name = f"garden-{name}"
    if normalize_name(metadata.get("Name", "")) != expected_name:
        raise CheckError(f"{wheel.name}: Name is {metadata.get('Name')!r}, not {expected_name!r}")
    version = source_version(name)
    if metadata.get("Version") != version:
        raise CheckError(
            f"{wheel.name}: Version is {metadata.get('Version')!r} but __about__.py says "
            f"{version!r}"
        )
    sdist_version = read_sdist(sdist).get("Version")
    if sdist_version != version:
        raise CheckError(
            f"{sdist.name}: Version is {sdist_version!r} but __about__.py says {version!r}"
        )

    in_wheel = {
        requirement
        for requirement in map(parse_requirement, metadata.get_all("Requires-Dist") or [])
        if requirement.name.startswith("garden-")
    }
    for requirement in sorted(in_wheel):
        problem = range_problem(requirement)
        if problem:
            raise CheckError(f"{wheel.name}: requirement {requirement} {problem}")
    declared = declared_garden_requirements(name)
    if in_wheel != declared:
        only_wheel = ", ".join(map(str, sorted(in_wheel - declared))) or "none"
        only_toml = ", ".join(map(str, sorted(declared - in_wheel))) or "none"
        raise CheckError(
            f"{wheel.name}: garden requirements differ from pyproject.toml "
            f"(only in the wheel: {only_wheel}; only in pyproject.toml: {only_toml})"
        )

    requirements = ", ".join(map(str, sorted(in_wheel))) or "none"
    return f"{expected_name} {version}: wheel and sdist ok; garden requirements: {requirements}"


def main(argv: list[str] | None = None) -> int:
    """Checks every named package and returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist_dir", type=Path, help="folder holding the built distributions")
    parser.add_argument("names", nargs="+", metavar="NAME", choices=KNOWN_PACKAGES)
    args = parser.parse_args(argv)
    if not args.dist_dir.is_dir():
        print(f"check_dists: {args.dist_dir} is not a folder: run `nox -s build`", file=sys.stderr)
        return 1

    failures = []
    for name in args.names:
        try:
            print(check_package(args.dist_dir, name))
        except CheckError as error:
            failures.append(f"garden-{name}: {error}")
    if failures:
        print(f"check_dists: {len(failures)} package(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
