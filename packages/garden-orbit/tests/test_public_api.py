"""garden_orbit exposes Orbit's public names and imports neither Keras nor other Garden code."""

import inspect
import json
import subprocess
import sys

import garden_orbit as orbit

ORBIT_NAMES = [
    "AbstractEvaluator",
    "AbstractTrainer",
    "Action",
    "Controller",
    "StandardEvaluator",
    "StandardEvaluatorOptions",
    "StandardTrainer",
    "StandardTrainerOptions",
    "actions",
    "utils",
]
ORBIT_ACTIONS = [
    "ConditionalAction",
    "ExportFileManager",
    "ExportSavedModel",
    "JSONPersistedValue",
    "NewBestMetric",
    "SaveCheckpointIfPreempted",
    "PeriodicAction",
]
ORBIT_UTILS = [
    "SummaryManager",
    "SummaryManagerInterface",
    "create_global_step",
    "create_loop_fn",
    "create_tf_while_loop_fn",
    "create_tf_while_loop_fn_with_state",
    "EpochHelper",
    "get_value",
    "make_distributed_dataset",
    "OptionalSummariesFunction",
    "LoopFnWithSummaries",
]


def test_orbit_public_names_exist():
    missing = [n for n in ORBIT_NAMES if not hasattr(orbit, n)]
    missing += [f"actions.{n}" for n in ORBIT_ACTIONS if not hasattr(orbit.actions, n)]
    missing += [f"utils.{n}" for n in ORBIT_UTILS if not hasattr(orbit.utils, n)]
    assert not missing


def test_orbit_signatures_keep_orbit_keywords():
    controller = inspect.signature(orbit.Controller).parameters
    for name in (
        "global_step",
        "trainer",
        "evaluator",
        "strategy",
        "train_actions",
        "eval_actions",
        "steps_per_loop",
        "checkpoint_manager",
        "summary_interval",
        "summary_dir",
        "eval_summary_dir",
    ):
        assert name in controller
    assert list(inspect.signature(orbit.Controller.train).parameters) == [
        "self",
        "steps",
        "checkpoint_at_completion",
    ]
    assert list(inspect.signature(orbit.Controller.train_and_evaluate).parameters) == [
        "self",
        "train_steps",
        "eval_steps",
        "eval_interval",
    ]
    assert list(inspect.signature(orbit.Controller.evaluate_continuously).parameters) == [
        "self",
        "steps",
        "timeout",
        "timeout_fn",
    ]


def test_import_loads_no_keras_and_no_other_garden_package():
    code = (
        "import json, sys; import garden_orbit; "
        "print(json.dumps(sorted(m for m in sys.modules if m == 'keras' "
        "or m.startswith(('keras.', 'garden_')))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded, "the probe found no garden_orbit module at all"
    assert all(m == "garden_orbit" or m.startswith("garden_orbit.") for m in loaded), loaded


def test_keras_still_loads_normally_after_garden_orbit():
    code = (
        "import garden_orbit, tensorflow as tf, keras; "
        "m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]); "
        "m.compile(optimizer='adam', loss='mse'); "
        "print(type(tf.keras.optimizers.Adam()).__module__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].startswith("keras.")
