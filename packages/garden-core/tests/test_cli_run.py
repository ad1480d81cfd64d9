"""`garden train`, `garden eval` and `garden export` on the built-in `mock` experiment: what
they write, what they print, and the one-line errors for bad input."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core import cli, experiment_factory, task_factory
from garden_core.config import override_config

QUICK = "trainer.train_steps=100,trainer.validation_interval=50,runtime.seed=3"


def garden(capsys, *args: str) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(r"garden( \w+)?: error: ", lines[0]), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A `mock` run trained with `garden train --mode train_and_eval`."""
    model_dir = tmp_path_factory.mktemp("run")
    status = cli.main(
        ["train", "--experiment", "mock", "--mode", "train_and_eval"]
        + ["--params_override", QUICK, "--model_dir", str(model_dir)]
    )
    assert status == 0
    return model_dir


def restored_model(checkpoint: str, overrides: str = QUICK) -> keras.Model:
    params = experiment_factory.get_experiment_config("mock")
    override_config(params, [], overrides)
    model = task_factory.get_task(params.task).build_model()
    tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
    return model


def test_train_writes_the_run_and_eval_reproduces_its_final_evaluation(trained, capsys):
    assert (trained / "params.yaml").exists()
    assert tf.train.latest_checkpoint(str(trained)).endswith("ckpt-100")
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if r["mode"] == "eval"][-1]
    assert final["step"] == 100

    status, out, _ = garden(
        capsys, "eval", "--experiment", "mock", "--params_override", QUICK, "--model_dir", trained
    )
    assert status == 0
    assert "final evaluation:" in out
    words = out.split("final evaluation: ")[1].splitlines()[0].split()
    shown = dict(zip(words[::2], words[1::2], strict=True))  # "name value  name value"
    assert float(shown["accuracy"]) == pytest.approx(final["metrics"]["accuracy"], abs=1e-3)
    assert float(shown["accuracy"]) > 0.85


def test_export_writes_a_saved_model_that_predicts_like_the_checkpoint(trained, tmp_path, capsys):
    export_dir = tmp_path / "exported"
    status, out, err = garden(
        capsys,
        "export",
        "--experiment",
        "mock",
        "--params_override",
        QUICK,
        "--checkpoint_path",
        trained,
        "--export_dir",
        export_dir,
    )
    assert status == 0, err
    assert "ckpt-100" in out
    assert [p.name for p in tmp_path.iterdir()] == ["exported"]  # No temporary left behind.

    loaded = tf.saved_model.load(str(export_dir))
    serving = loaded.signatures["serving_default"]
    assert list(serving.structured_input_signature[1]) == ["features"]
    features = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    outputs = serving(features=tf.constant(features))
    assert set(outputs) == {"logits", "probabilities", "classes"}
    expected = restored_model(tf.train.latest_checkpoint(str(trained)))(features)
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outputs["classes"].numpy(), np.argmax(expected, axis=-1))
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=-1), 1.0, rtol=1e-5)

    # A second export never overwrites the first.
    status, _, err = garden(
        capsys, "export", "--experiment", "mock", "--checkpoint_path", trained,
        "--export_dir", export_dir,
    )  # fmt: skip
    assert status == 1
    assert "already exists" in one_line_error(err)
    assert tf.saved_model.load(str(export_dir)).signatures["serving_default"] is not None


def test_a_mixed_precision_run_gives_the_callers_dtype_policy_back(tmp_path):
    assert keras.config.dtype_policy().name == "float32"
    status = cli.main(
        ["train", "--experiment", "mock", "--mode", "train", "--model_dir", str(tmp_path)]
        + ["--params_override", "trainer.train_steps=2,runtime.mixed_precision_dtype=bfloat16"]
    )
    assert status == 0
    assert keras.config.dtype_policy().name == "float32"


def test_export_with_ema_serves_the_averaged_weights(tmp_path, capsys):
    overrides = QUICK + ",trainer.optimizer_config.ema.average_decay=0.9"
    model_dir = tmp_path / "run"
    assert cli.main(
        ["train", "--experiment", "mock", "--mode", "train", "--params_override", overrides]
        + ["--model_dir", str(model_dir)]
    ) == 0  # fmt: skip
    status, _, err = garden(
        capsys, "export", "--experiment", "mock", "--params_override", overrides,
        "--checkpoint_path", model_dir, "--export_dir", tmp_path / "exported",
    )  # fmt: skip
    assert status == 0, err
    checkpoint = tf.train.latest_checkpoint(str(model_dir))
    raw = restored_model(checkpoint, overrides)
    averaged = restored_model(checkpoint, overrides)
    # The averages, saved in the order of the model's trainable weights, replace them.
    reader = tf.train.load_checkpoint(checkpoint)
    for i, weight in enumerate(averaged.trainable_weights):
        weight.assign(reader.get_tensor(f"ema/_averages/{i}/.ATTRIBUTES/VARIABLE_VALUE"))
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    features = np.eye(8, dtype="float32")
    served = exported.signatures["serving_default"](features=tf.constant(features))["logits"]
    assert not np.allclose(served.numpy(), raw(features).numpy(), atol=1e-3)
    np.testing.assert_allclose(served.numpy(), averaged(features).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--experiment", "mokc", "--mode", "train"], "did you mean `mock`?"),
        (
            ["train", "--experiment", "mock", "--mode", "train", "--params_override", "task.x=1"],
            "unknown key `task.x`",
        ),
        (
            ["train", "--experiment", "mock", "--mode", "train"]
            + ["--params_override", "runtime.distribution_strategy=clustered"],
            "choose one of off, one_device, mirrored",
        ),
        (
            ["train", "--experiment", "mock", "--mode", "train", "--config_file", "nowhere.yaml"],
            "nowhere.yaml",
        ),
        (["eval", "--experiment", "mock"], "holds no checkpoint"),
        (
            ["export", "--experiment", "mock", "--checkpoint_path", "nowhere"]
            + ["--export_dir", "out"],
            "--checkpoint_path nowhere: no checkpoint there",
        ),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    if args[0] != "export":
        args = [*args, "--model_dir", str(tmp_path / "run")]
    status, _, err = garden(capsys, *args)
    assert status == 1
    assert message in one_line_error(err)
    assert not (tmp_path / "out").exists()


def test_usage_errors_name_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--experiment", "mock", "--mode", "fit", "--model_dir", "x"])
    assert exit_info.value.code == 2
    error = one_line_error(capsys.readouterr().err)
    assert "argument --mode: invalid choice: 'fit'" in error
    assert "did you mean" not in error  # The flag is right; argparse lists the choices.
    with pytest.raises(SystemExit):
        cli.main(["export", "--experiment", "mock", "--checkpoint_path", "x"])
    assert "--export_dir" in one_line_error(capsys.readouterr().err)


def test_export_rejects_an_input_type_the_task_does_not_offer(trained, tmp_path, capsys):
    status, _, err = garden(
        capsys, "export", "--experiment", "mock", "--checkpoint_path", trained,
        "--export_dir", tmp_path / "e", "--input_type", "image_bytes",
    )  # fmt: skip
    assert status == 1
    assert "--input_type image_bytes: the mock task serves tensor" in one_line_error(err)
    assert not (tmp_path / "e").exists()
