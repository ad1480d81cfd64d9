"""The `garden` command line: `garden list` and `garden show`.

Every mistake in the input (an unknown flag, kind or name, a bad config file or override)
ends with a one-line error, with suggestions where there are close matches, and a non-zero
exit status, never a traceback. `garden list` never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from garden_core import registry as registry_lib
from garden_core.__about__ import __version__

_EXIT_USAGE = 2
_EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with suggestions."""

    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_USAGE, f"{self.prog}: error: {message}{self._suggestion(message)}\n")

    def _suggestion(self, message: str) -> str:
        parsers = [self]
        for action in self._actions:  # Flags of subcommands are reported by the top parser.
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
        options = [o for p in parsers for action in p._actions for o in action.option_strings]
        choices = [c for action in self._actions if action.choices for c in action.choices]
        for token in message.replace("'", " ").replace(",", " ").split():
            pool = options if token.startswith("-") else choices
            matches = difflib.get_close_matches(token, pool, n=2, cutoff=0.6)
            if matches and token not in pool:
                return " (did you mean " + " or ".join(matches) + "?)"
        return ""


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="garden",
        description="Garden: list and inspect experiments, tasks and model builders.",
    )
    parser.add_argument("--version", action="version", version=f"garden-core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    listing = commands.add_parser(
        "list",
        help="list registered names with their providing distribution",
        description=(
            "List registered names with the distribution (and version) that provides them. "
            f"KIND is one of: {', '.join(registry_lib.KINDS)} (default: all). PATTERN is a "
            "shell-style wildcard such as 'resnet*'."
        ),
    )
    listing.add_argument("kind", nargs="?", metavar="KIND", help="what to list (default: all)")
    listing.add_argument("pattern", nargs="?", metavar="PATTERN", help="a wildcard on names")

    show = commands.add_parser(
        "show",
        help="print an experiment's effective config as YAML",
        description=(
            "Print the effective config of EXPERIMENT as YAML: its defaults, then each "
            "--config_file in order, then --params_override."
        ),
    )
    show.add_argument("experiment", metavar="EXPERIMENT", help="a registered experiment name")
    show.add_argument(
        "--config_file",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML file of overrides; repeat to apply several in order",
    )
    show.add_argument(
        "--params_override",
        default=None,
        metavar="OVERRIDES",
        help="overrides applied last: 'a.b=1,c=[1,2]', YAML text, or a YAML file",
    )
    show.add_argument(
        "--diff", action="store_true", help="print only what differs from the defaults"
    )
    return parser


def _run_list(kind: str | None, pattern: str | None) -> int:
    if kind is not None and kind not in registry_lib.KINDS:
        singular = {k[:-1]: k for k in registry_lib.KINDS}
        if kind in singular:
            kind = singular[kind]
        else:
            matches = difflib.get_close_matches(kind, registry_lib.KINDS, n=2, cutoff=0.5)
            hint = (
                f"did you mean {' or '.join(matches)}?"
                if matches
                else ("expected one of " + ", ".join(registry_lib.KINDS))
            )
            print(f"garden: error: unknown kind {kind!r}: {hint}", file=sys.stderr)
            return _EXIT_USAGE
    rows = []
    for each in [kind] if kind else registry_lib.KINDS:
        providers = registry_lib.registry(each).providers()
        for name in registry_lib.registry(each).names(pattern):
            entries = providers[name]
            conflict = "  (CONFLICT: offered more than once)" if len(entries) > 1 else ""
            for entry in entries:
                source = f"{entry.distribution} {entry.version}".strip()
                rows.append((each, name, source + conflict))
    if not rows:
        what = kind or "names"
        print(f"no {what} registered" + (f" matching {pattern!r}" if pattern else ""))
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for each, name, source in rows:
        print(f"{each:<{widths[0]}}  {name:<{widths[1]}}  {source}")
    return 0


_SAME = object()  # "No difference", distinct from any config value (None included).


def _changed_leaves(default: Any, effective: Any) -> Any:
    """The parts of `effective` that differ from `default` (dicts compared key by key)."""
    if isinstance(default, dict) and isinstance(effective, dict):
        changed = {}
        for key, value in effective.items():
            if key not in default:
                changed[key] = value
                continue
            sub = _changed_leaves(default[key], value)
            if sub is not _SAME:
                changed[key] = sub
        return changed or _SAME
    return _SAME if default == effective else effective


def _run_show(args: argparse.Namespace) -> int:
    import yaml

    from garden_core.config import override_config

    defaults = registry_lib.get_experiment_config(args.experiment)
    config = registry_lib.get_experiment_config(args.experiment)
    override_config(config, args.config_file, args.params_override)
    config.validate()
    if args.diff:
        changed = _changed_leaves(defaults.as_dict(), config.as_dict())
        if changed is _SAME:
            print(f"# no differences from the defaults of {args.experiment}")
            return 0
        print(yaml.safe_dump(changed, sort_keys=False, default_flow_style=False), end="")
        return 0
    print(config.as_yaml(), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `garden` command; returns its exit status."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "list":  # Kept light: no config system, no TensorFlow.
            return _run_list(args.kind, args.pattern)
        from garden_core.config import ConfigError

        try:
            return _run_show(args)
        except ConfigError as error:
            print(f"garden: error: {error}", file=sys.stderr)
            return _EXIT_FAILURE
    except registry_lib.RegistryError as error:
        print(f"garden: error: {error}", file=sys.stderr)
        return _EXIT_FAILURE


def run() -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())
