"""The `garden` command line: `list`, `show`, `train`, `eval` and `export`.

    garden list [KIND] [PATTERN]
    garden show EXPERIMENT [--config_file F]... [--params_override S] [--diff]
    garden train --experiment NAME [--config_file F]... [--params_override S]
                 --mode MODE --model_dir DIR
    garden eval --experiment NAME ... --model_dir DIR [--mode eval|continuous_eval]
    garden export --experiment NAME ... --checkpoint_path PATH --export_dir DIR

Every mistake in the input (an unknown flag, kind or name, a bad config file or override, a
missing checkpoint) ends with a one-line error, with suggestions where there are close
matches, and a non-zero exit status, never a traceback. `garden list` never imports
TensorFlow.
"""

from __future__ import annotations

import argparse
import difflib
import os
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
        # Subcommands share flags: each is offered once.
        options = list(
            dict.fromkeys(o for p in parsers for a in p._actions for o in a.option_strings)
        )
        choices = [c for action in self._actions if action.choices for c in action.choices]
        for token in message.replace("'", " ").replace(",", " ").replace(":", " ").split():
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

    def experiment_flags(command: _Parser) -> None:
        command.add_argument(
            "--experiment", required=True, metavar="NAME", help="a registered experiment"
        )
        command.add_argument(
            "--config_file",
            action="append",
            default=[],
            metavar="FILE",
            help="a YAML file of overrides; repeat to apply several in order",
        )
        command.add_argument(
            "--params_override",
            default=None,
            metavar="OVERRIDES",
            help="overrides applied last: 'a.b=1,c=[1,2]', YAML text, or a YAML file",
        )

    from garden_core.train_modes import MODES

    train = commands.add_parser(
        "train",
        help="train (and evaluate) an experiment",
        description=(
            "Run an experiment. MODE is one of: " + ", ".join(MODES) + ". MODEL_DIR receives "
            "params.yaml, checkpoints, summaries (train/, validation/) and metrics.jsonl; "
            "running the same command again resumes from its latest checkpoint."
        ),
    )
    experiment_flags(train)
    train.add_argument("--mode", required=True, choices=MODES, help="what to run")
    train.add_argument("--model_dir", required=True, metavar="DIR", help="the output folder")

    evaluate = commands.add_parser(
        "eval",
        help="evaluate an experiment's checkpoints",
        description=(
            "Evaluate the latest checkpoint in MODEL_DIR (--mode eval, the default) or each "
            "new checkpoint as training writes it (--mode continuous_eval)."
        ),
    )
    experiment_flags(evaluate)
    evaluate.add_argument("--mode", default="eval", choices=("eval", "continuous_eval"))
    evaluate.add_argument("--model_dir", required=True, metavar="DIR", help="the run's folder")

    export = commands.add_parser(
        "export",
        help="export a checkpoint as a SavedModel",
        description=(
            "Restore CHECKPOINT_PATH (a checkpoint prefix, or a folder: its latest checkpoint) "
            "into the experiment's model and write a SavedModel to EXPORT_DIR, which must not "
            "exist yet. The SavedModel appears there only once complete."
        ),
    )
    experiment_flags(export)
    export.add_argument("--checkpoint_path", required=True, metavar="PATH")
    export.add_argument("--export_dir", required=True, metavar="DIR")
    export.add_argument(
        "--input_type",
        default=None,
        metavar="TYPE",
        help=(
            "the serving input type, or a comma list of them: the first is served as "
            "serving_default, the others under their own names (default: the task's first, "
            "e.g. tensor or image_tensor)"
        ),
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
    from garden_core.experiment_factory import get_experiment_config

    defaults = get_experiment_config(args.experiment)
    config = get_experiment_config(args.experiment)
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


def _experiment_config(args: argparse.Namespace):
    from garden_core.config import override_config
    from garden_core.experiment_factory import get_experiment_config

    config = get_experiment_config(args.experiment)
    override_config(config, args.config_file, args.params_override)
    config.validate()
    return config


def _run_experiment(args: argparse.Namespace) -> int:
    config = _experiment_config(args)
    from garden_core import distribute_utils, task_factory, train_lib, train_utils

    distribute_utils.configure_runtime(config.runtime)
    strategy = distribute_utils.strategy_from_runtime(config.runtime)
    task = task_factory.get_task(config.task, logging_dir=args.model_dir)
    _, logs = train_lib.run_experiment(strategy, task, args.mode, config, args.model_dir)
    if logs and train_utils.is_chief(strategy):
        from garden_orbit.utils import format_metrics

        print(f"final evaluation: {format_metrics(logs)}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    config = _experiment_config(args)
    from garden_core import distribute_utils, export_base, task_factory
    from garden_core.config import ConfigError

    distribute_utils.set_mixed_precision_policy(None)  # Serve in float32.
    task = task_factory.get_task(config.task)
    model = task.build_model()
    ema = None
    if config.trainer.optimizer_config.ema is not None:
        from garden_core.optimization.ema import ExponentialMovingAverage

        ema = ExponentialMovingAverage.from_config(config.trainer.optimizer_config.ema, model)
    read = export_base.restore_for_export(model, args.checkpoint_path, ema=ema)
    module = task.build_export_module(model, config)
    offered = getattr(module, "INPUT_TYPES", None)
    input_types = [t.strip() for t in (args.input_type or "").split(",") if t.strip()]
    for input_type in input_types:
        if offered is not None and input_type not in offered:
            raise ConfigError(
                f"--input_type {input_type}: the {args.experiment} task serves "
                + ", ".join(offered)
            )
    # The first input type serves as `serving_default`; the others under their own names.
    keys = {t: "serving_default" if i == 0 else t for i, t in enumerate(input_types)} or None
    written = export_base.export(module, args.export_dir, function_keys=keys)
    print(f"exported {read} to {written}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `garden` command; returns its exit status."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "list":  # Kept light: no config system, no TensorFlow.
            return _run_list(args.kind, args.pattern)
        if args.command == "show":
            return _guarded(_run_show, args)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        if args.command == "export":
            return _guarded(_run_export, args)
        return _guarded(_run_experiment, args)
    except registry_lib.RegistryError as error:
        print(f"garden: error: {error}", file=sys.stderr)
        return _EXIT_FAILURE


def _guarded(command, args: argparse.Namespace) -> int:
    """Runs `command`; input and environment errors become one-line messages."""
    from garden_core.config import ConfigError

    expected: tuple[type[BaseException], ...] = (
        ConfigError,
        registry_lib.RegistryError,
        FileNotFoundError,
        FileExistsError,
    )
    previous_policy = None
    if args.command != "show":
        import keras

        from garden_core.base_trainer import LossBlowupError
        from garden_core.data import CorruptRecordError, InputNotFoundError

        expected += (LossBlowupError, CorruptRecordError, InputNotFoundError)
        # `runtime.mixed_precision_dtype` sets Keras' global dtype policy; a command run
        # in-process (`cli.main`) gives the caller's policy back.
        previous_policy = keras.config.dtype_policy()
    try:
        return command(args)
    except expected as error:
        print(f"garden: error: {error}", file=sys.stderr)
        return _EXIT_FAILURE
    finally:
        if previous_policy is not None:
            keras.config.set_dtype_policy(previous_policy)


def run() -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())
