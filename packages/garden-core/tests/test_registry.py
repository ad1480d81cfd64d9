"""Entry-point registries and the `garden` CLI, with providers made on the fly.

Temporary distributions (`garden_core.testing.plugins.make_distribution`: a `*.dist-info`
folder plus a module) on a temporary `PYTHONPATH` let each test control exactly which
providers exist; every check runs in a fresh interpreter. A real `pip install` goes into an
environment of its own, never into the interpreter running the tests.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import textwrap

import pytest

from garden_core import experiment_factory
from garden_core import registry as registry_lib
from garden_core.config import ExperimentConfig
from garden_core.testing.plugins import make_distribution, run_python

EXPERIMENT_MODULE = """
import garden_core.config as config

def {function}():
    experiment = config.ExperimentConfig()
    experiment.trainer.train_steps = {steps}
    return experiment
"""


def run_garden(root, *args, **env):
    code = f"import sys; from garden_core.cli import main; sys.exit(main({list(args)!r}))"
    return run_python(root, code, **env)


@pytest.fixture
def plugins(tmp_path):
    make_distribution(
        tmp_path,
        "acme-vision",
        "acme_vision",
        EXPERIMENT_MODULE.format(function="resnet_acme", steps=7)
        + "\nimport sys\nsys.modules['acme_vision_was_imported'] = sys",
        {"garden.experiments": {"resnet_acme": "acme_vision:resnet_acme"}},
    )
    make_distribution(
        tmp_path,
        "broken-plugin",
        "broken_plugin",
        "raise RuntimeError('boom at import')\n",
        {"garden.experiments": {"broken_experiment": "broken_plugin:factory"}},
    )
    return tmp_path


def test_listing_imports_no_provider_and_no_tensorflow(plugins):
    result = run_python(
        plugins,
        """
        import json, sys
        from garden_core import registry
        names = registry.experiments.names()
        third_party = [n for n in names if registry.experiments.entry(n).is_third_party]
        print(json.dumps([names, third_party, 'acme_vision' in sys.modules,
                          'tensorflow' in sys.modules]))
        """,
    )
    assert result.returncode == 0, result.stderr
    names, third_party, imported_provider, imported_tf = json.loads(result.stdout.splitlines()[-1])
    assert third_party == ["broken_experiment", "resnet_acme"]
    assert "mock" in names  # garden-core's own, listed like the others.
    assert not imported_provider
    assert not imported_tf


def test_lookup_imports_only_the_providing_module(plugins):
    result = run_python(
        plugins,
        """
        import json, sys
        from garden_core import registry
        from garden_core.experiment_factory import get_experiment_config
        config = get_experiment_config('resnet_acme')
        print(json.dumps([config.trainer.train_steps, 'acme_vision' in sys.modules,
                          'broken_plugin' in sys.modules]))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [7, True, False]


def test_a_provider_that_fails_to_import_is_reported_and_isolated(plugins):
    result = run_garden(plugins, "show", "broken_experiment")
    assert result.returncode == 1
    assert "broken-plugin 1.2.3 failed to load" in result.stderr
    assert "RuntimeError: boom at import" in result.stderr
    assert "Traceback" not in result.stderr
    still_works = run_garden(plugins, "show", "resnet_acme")
    assert still_works.returncode == 0, still_works.stderr
    assert "train_steps: 7" in still_works.stdout


def test_a_name_offered_twice_is_an_error_naming_both(plugins):
    make_distribution(
        plugins,
        "other-vision",
        "other_vision",
        EXPERIMENT_MODULE.format(function="resnet_acme", steps=9),
        {"garden.experiments": {"resnet_acme": "other_vision:resnet_acme"}},
    )
    result = run_garden(plugins, "show", "resnet_acme")
    assert result.returncode == 1
    assert "offered by more than one distribution" in result.stderr
    assert "acme-vision 1.2.3" in result.stderr
    assert "other-vision 1.2.3" in result.stderr
    listing = run_garden(plugins, "list", "experiments")
    assert "CONFLICT" in listing.stdout


def test_unknown_names_list_close_matches(plugins):
    result = run_garden(plugins, "show", "resnet_acm")
    assert result.returncode == 1
    # The closest match first (other installed Garden packages may add more).
    assert result.stderr.strip().startswith(
        "garden: error: unknown experiment `resnet_acm`: did you mean `resnet_acme`"
    )


@pytest.mark.parametrize(("value", "visible"), [("acme-vision", False), ("*", False), ("", True)])
def test_garden_disable_plugins_turns_off_third_party_providers(plugins, value, visible):
    result = run_garden(plugins, "list", "experiments", **{registry_lib.DISABLE_ENV: value})
    assert result.returncode == 0, result.stderr
    assert ("resnet_acme" in result.stdout) is visible
    assert ("broken_experiment" in result.stdout) is (value != "*")


def test_garden_list_shows_distribution_and_version_with_wildcards(plugins):
    result = run_garden(plugins, "list", "experiments", "*_acme")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["experiments", "resnet_acme", "acme-vision", "1.2.3"]
    nothing = run_garden(plugins, "list", "backbones", "x*")
    assert nothing.stdout.strip() == "no backbones registered matching 'x*'"


def test_garden_list_shows_built_in_components_like_plugins(tmp_path):
    from garden_core.__about__ import __version__

    result = run_garden(tmp_path, "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    built_in = {(row[0], row[1]) for row in rows if row[2:4] == ["garden-core", __version__]}
    # Model Garden's optimizer and schedule type names, the mock experiment's pieces.
    assert {
        ("experiments", "mock"),
        ("tasks", "MockTaskConfig"),
        ("models", "mock_mlp"),
        *[("optimizers", name) for name in ("sgd", "adam", "adamw", "lamb", "lars")],
        *[("optimizers", name) for name in ("rmsprop", "adagrad", "adafactor", "lion")],
        *[("schedules", name) for name in ("constant", "stepwise", "exponential")],
        *[("schedules", name) for name in ("polynomial", "cosine", "power", "power_linear")],
        ("schedules", "power_with_offset"),
        ("schedules", "step_cosine_with_offset"),
    } <= built_in


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lst"], "invalid choice: 'lst'"),
        (["list", "experimnts"], "unknown kind 'experimnts': did you mean experiments?"),
        (["show", "resnet_acme", "--config_fille", "x"], "did you mean --config_file?"),
        (["show", "resnet_acme", "--params_override", "trainer.train_stepz=3"], "train_steps"),
        (["show", "resnet_acme", "--config_file", "/nonexistent.yaml"], "cannot read"),
    ],
)
def test_bad_input_gives_one_line_errors(plugins, args, message):
    result = run_garden(plugins, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_show_applies_files_then_overrides_and_can_diff(plugins, tmp_path):
    first = tmp_path / "first.yaml"
    first.write_text("trainer:\n  train_steps: 100\n  validation_interval: 50\n")
    second = tmp_path / "second.yaml"
    second.write_text("trainer:\n  train_steps: 200\n")
    args = ["show", "resnet_acme", "--config_file", str(first), "--config_file", str(second)]
    full = run_garden(plugins, *args, "--params_override", "runtime.num_gpus=2")
    assert full.returncode == 0, full.stderr
    shown = ExperimentConfig.from_dict(__import__("yaml").safe_load(full.stdout))
    assert (shown.trainer.train_steps, shown.trainer.validation_interval) == (200, 50)
    assert shown.runtime.num_gpus == 2
    diff = run_garden(plugins, *args, "--diff")
    assert __import__("yaml").safe_load(diff.stdout) == {
        "trainer": {"train_steps": 200, "validation_interval": 50}
    }
    same = run_garden(plugins, "show", "resnet_acme", "--diff")
    assert same.stdout.strip() == "# no differences from the defaults of resnet_acme"


def test_help_is_available_everywhere(plugins):
    for args in ([], ["list"], ["show"]):
        result = run_garden(plugins, *args, "--help")
        assert result.returncode == 0
        assert "usage: garden" in result.stdout


def test_in_process_registration_for_notebooks():
    registry = registry_lib.Registry("experiments")

    @registry.register("notebook_experiment")
    def notebook_experiment():
        return ExperimentConfig()

    assert registry.get("notebook_experiment") is notebook_experiment
    assert registry.entry("notebook_experiment").distribution == registry_lib.IN_PROCESS
    with pytest.raises(registry_lib.RegistryError, match="already registered"):
        registry.register("notebook_experiment", notebook_experiment)
    registry.register("notebook_experiment", print, override=True)
    assert registry.get("notebook_experiment") is print
    with pytest.raises(ValueError, match="unknown registry kind"):
        registry_lib.Registry("widgets")


def _environment_on_top_of_this_one(path) -> str:
    """Creates a virtual environment that also sees this interpreter's installed packages.

    The new environment's own site-packages comes first, so what is installed there is
    found first; the running interpreter's site-packages (with Garden's packages, editable
    or not) follow, through a `.pth` file. Returns the new environment's python.
    """
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv to create an environment and install into it without the network")
    created = subprocess.run(
        [uv, "venv", "--offline", "--python", sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    python = path / "bin" / "python"
    own_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    parents = "".join(f"site.addsitedir({d!r}); " for d in site.getsitepackages())
    (path / own_site / "_garden_test_parent.pth").write_text(f"import site; {parents}\n")
    return str(python)


@pytest.mark.slow
def test_a_published_research_package_plugs_in_after_pip_install(tmp_path):
    python = _environment_on_top_of_this_one(tmp_path / "env")
    package = tmp_path / "garden-demo-research"
    (package / "src" / "garden_demo_research").mkdir(parents=True)
    (package / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "garden-demo-research"
            version = "0.3.0"
            dependencies = ["garden-core>=0.1,<0.2"]

            [project.entry-points."garden.experiments"]
            demo_research = "garden_demo_research.experiments:demo_research"
            """
        )
    )
    (package / "src" / "garden_demo_research" / "__init__.py").write_text("")
    (package / "src" / "garden_demo_research" / "experiments.py").write_text(
        EXPERIMENT_MODULE.format(function="demo_research", steps=42)
    )
    install = [shutil.which("uv"), "pip", "install", "--offline", "--no-deps"]
    installed = subprocess.run(
        [*install, "--python", python, str(package)], capture_output=True, text=True, timeout=300
    )
    assert installed.returncode == 0, installed.stderr

    def garden(*args: str) -> subprocess.CompletedProcess:
        code = f"import sys; from garden_core.cli import main; sys.exit(main({list(args)!r}))"
        return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)

    listing = garden("list", "experiments", "demo_*")
    assert listing.stdout.split() == [
        "experiments",
        "demo_research",
        "garden-demo-research",
        "0.3.0",
    ], listing.stderr
    shown = garden("show", "demo_research")
    assert "train_steps: 42" in shown.stdout, shown.stderr
    # Installed into its own environment only.
    here = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlib.metadata import version; version('garden-demo-research')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "PackageNotFoundError" in here.stderr


def test_garden_list_command_does_not_import_tensorflow(plugins):
    result = run_python(
        plugins,
        """
        import sys
        from garden_core.cli import main
        main(['list'])
        print('tensorflow' in sys.modules, 'garden_core.config' in sys.modules)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["False", "False"]
    assert "resnet_acme" in result.stdout


def test_every_registered_experiment_round_trips_through_yaml():
    import yaml

    # As `params.yaml` is read back: onto the experiment's registered defaults, which know the
    # task's own config classes.
    for name in registry_lib.experiments.names():
        config = experiment_factory.get_experiment_config(name)
        config.override({"trainer": {"train_steps": 7}, "runtime": {"seed": 3}})
        restored = experiment_factory.get_experiment_config(name)
        restored.override(yaml.safe_load(config.as_yaml()))
        assert restored == config, name
