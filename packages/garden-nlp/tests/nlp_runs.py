"""Helpers the task tests share: run an experiment in-process, export it with `garden export`."""

from __future__ import annotations

import pathlib

import tensorflow as tf

from garden_core import cli, task_factory, train_lib


def run(params, model_dir, mode: str = "train_and_eval") -> dict:
    """Runs `params` with `run_experiment` in `model_dir`; returns the final logs."""
    task = task_factory.get_task(params.task, logging_dir=str(model_dir))
    _, logs = train_lib.run_experiment(
        tf.distribute.get_strategy(), task, mode, params, str(model_dir)
    )
    return logs


def export(
    params, experiment: str, checkpoint_path, tmp_path: pathlib.Path, input_type: str = ""
) -> int:
    """Runs `garden export` of `params` (written as a config file) into `tmp_path/export`.

    Returns the command's exit status.
    """
    config_file = tmp_path / "params.yaml"
    config_file.write_text(params.as_yaml())
    argv = ["export", "--experiment", experiment, "--config_file", str(config_file)]
    argv += ["--checkpoint_path", str(checkpoint_path), "--export_dir", str(tmp_path / "export")]
    if input_type:
        argv += ["--input_type", input_type]
    return cli.main(argv)
