"""garden-core's distribution support end to end, on the built-in `mock` experiment.

- `mirrored` over two logical CPUs (in a fresh interpreter) trains to the same weights as
  `off` with the same global batch and seed.
- `multi_worker_mirrored` with two `garden train` processes on loopback trains to the same
  weights as a single process; only the chief writes the run's files, and the other
  worker's private folder is gone at the end.
- `tpu` without a TPU is a `ConfigError`, and a one-line error from `garden train`.
- `distribute_utils`' checks of strategy names, `num_gpus`, `TF_CONFIG`, `worker_hosts`,
  `task_index`, `gpu_thread_mode` and `deterministic_ops`.

Subprocess tests are marked `slow`. They hide GPUs from their processes, so `mirrored` uses
the logical CPUs in every test session.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import pytest
import tensorflow as tf

from garden_core import cli, distribute_utils, experiment_factory, task_factory
from garden_core.config import ConfigError, RuntimeConfig, load_mapping_file

WORKER = os.path.join(os.path.dirname(__file__), "workers", "garden_train.py")
# A short, seeded and deterministic run: two loops of 10 steps, a checkpoint after each.
TRAIN_STEPS = 20
OVERRIDES = (
    f"runtime.seed=7,runtime.deterministic_ops=true,trainer.train_steps={TRAIN_STEPS},"
    "trainer.steps_per_loop=10,trainer.checkpoint_interval=10,trainer.summary_interval=10"
)
TIMEOUT_S = 300

no_tpu_session = pytest.mark.skipif(
    os.environ.get("GARDEN_ACCELERATOR") == "tpu", reason="expects no TPU to be reachable"
)


# Helpers for subprocess runs.


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_garden_train(
    model_dir: pathlib.Path,
    strategy: str,
    replicas_file: pathlib.Path,
    num_logical_cpus: int = 1,
    tf_config: dict | None = None,
) -> subprocess.Popen:
    """Starts `garden train` on the mock experiment in a fresh interpreter (see the worker)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    command = [
        sys.executable,
        WORKER,
        str(num_logical_cpus),
        str(replicas_file),
        "--experiment=mock",
        "--mode=train",
        f"--model_dir={model_dir}",
        f"--params_override=runtime.distribution_strategy={strategy},{OVERRIDES}",
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for(processes: Sequence[subprocess.Popen], timeout: float = TIMEOUT_S) -> list[str]:
    """Waits for every process to succeed and returns their outputs.

    The first failure, or the timeout, kills the others: a worker of a multi-worker run
    would otherwise wait for its failed peer until the timeout.
    """
    deadline = time.monotonic() + timeout
    timed_out = False
    with concurrent.futures.ThreadPoolExecutor(len(processes)) as pool:
        futures = [pool.submit(process.communicate) for process in processes]
        try:
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(
                    pending,
                    timeout=max(0.0, deadline - time.monotonic()),
                    return_when=concurrent.futures.FIRST_COMPLETED,
                )
                timed_out = not done
                if timed_out or any(processes[futures.index(f)].returncode != 0 for f in done):
                    break
        finally:
            for process in processes:
                process.kill()  # Does nothing to a process that has ended.
        outputs = [future.result()[0] for future in futures]
    # Report real failures first: a process killed here shows only that it was stopped.
    report = sorted(
        (process.returncode == -9, index)
        for index, process in enumerate(processes)
        if process.returncode != 0
    )
    messages = []
    for killed, index in report:
        if killed:
            why = f"timed out after {timeout:.0f}s" if timed_out else "was stopped"
        else:
            why = f"failed with status {processes[index].returncode}"
        messages.append(f"process {index} {why}:\n{outputs[index][-3000:]}")
    assert not messages, "\n\n".join(messages)
    return outputs


def _replicas(replicas_file: pathlib.Path) -> int:
    return json.loads(replicas_file.read_text())["num_replicas_in_sync"]


def _final_weights(model_dir: pathlib.Path) -> dict[str, np.ndarray]:
    """The mock model's weights in the latest checkpoint of `model_dir`, by variable path."""
    latest = tf.train.latest_checkpoint(str(model_dir))
    assert latest is not None, f"{model_dir} holds no checkpoint"
    assert latest.endswith(f"ckpt-{TRAIN_STEPS}"), latest
    model = task_factory.get_task(
        experiment_factory.get_experiment_config("mock").task
    ).build_model()
    status = tf.train.Checkpoint(model=model).read(latest)
    status.assert_existing_objects_matched()  # Every weight came from the checkpoint.
    return {weight.path: weight.numpy() for weight in model.weights}


def _assert_same_weights(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> pathlib.Path:
    """The model_dir of a single-process, undistributed (`off`) run of the mock experiment."""
    root = tmp_path_factory.mktemp("reference")
    process = _start_garden_train(root / "model", "off", root / "replicas.json")
    _wait_for([process])
    assert _replicas(root / "replicas.json") == 1
    return root / "model"


# mirrored and multi_worker_mirrored.


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_an_undistributed_run(tmp_path, reference_run):
    process = _start_garden_train(
        tmp_path / "model", "mirrored", tmp_path / "replicas.json", num_logical_cpus=2
    )
    _wait_for([process])
    assert _replicas(tmp_path / "replicas.json") == 2
    _assert_same_weights(_final_weights(tmp_path / "model"), _final_weights(reference_run))
    # TensorFlow can save the state of a plain tf.data iterator, not a distributed one,
    # whose position is saved as the number of batches drawn (one a step).
    saved = tf.train.load_checkpoint(str(reference_run)).get_variable_to_shape_map()
    assert any(key.startswith("train_iterator/") for key in saved)
    assert not any(key.startswith("train_data_position/") for key in saved)
    reader = tf.train.load_checkpoint(str(tmp_path / "model"))
    assert not any(key.startswith("train_iterator/") for key in reader.get_variable_to_shape_map())
    assert reader.get_tensor("train_data_position/.ATTRIBUTES/VARIABLE_VALUE") == TRAIN_STEPS


@pytest.mark.slow
def test_multi_worker_mirrored_on_two_processes_matches_one_process(tmp_path, reference_run):
    model_dir = tmp_path / "model"  # Shared: the chief writes here, the other worker below.
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    workers = [
        _start_garden_train(
            model_dir,
            "multi_worker_mirrored",
            tmp_path / f"replicas_{index}.json",
            tf_config={"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}},
        )
        for index in range(2)
    ]
    _wait_for(workers)
    assert [_replicas(tmp_path / f"replicas_{index}.json") for index in range(2)] == [2, 2]
    _assert_same_weights(_final_weights(model_dir), _final_weights(reference_run))

    # Only the chief (worker 0) writes the run's files: one writer of metrics.jsonl records
    # each step once, and the train summaries are one event file.
    written = load_mapping_file(str(model_dir / "params.yaml"))
    assert written["runtime"]["distribution_strategy"] == "multi_worker_mirrored"
    records = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if record["mode"] == "train"] == [10, 20]
    assert len(list((model_dir / "train").glob("events.out.tfevents.*"))) == 1
    # The other worker saved its checkpoints in model_dir/.worker-worker-1, removed at the end.
    assert not list(model_dir.glob(".worker-*"))
    assert sorted(path.name for path in model_dir.iterdir()) == [
        "checkpoint",
        "ckpt-10.data-00000-of-00001",
        "ckpt-10.index",
        "ckpt-20.data-00000-of-00001",
        "ckpt-20.index",
        "metrics.jsonl",
        "params.yaml",
        "train",
    ]


# tpu without a TPU.


@no_tpu_session
def test_tpu_without_a_tpu_is_a_config_error():
    with pytest.raises(ConfigError, match="'tpu' but no TPU is reachable"):
        distribute_utils.get_distribution_strategy("tpu")


@no_tpu_session
def test_garden_train_on_tpu_without_a_tpu_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")  # The CLI sets it; restored afterwards.
    status = cli.main(
        [
            "train",
            "--experiment",
            "mock",
            "--params_override",
            "runtime.distribution_strategy=tpu,trainer.train_steps=1",
            "--mode",
            "train",
            "--model_dir",
            str(tmp_path / "model"),
        ]
    )
    assert status != 0
    err = capsys.readouterr().err
    assert err.startswith("garden: error: ")
    assert "no TPU is reachable" in err
    assert err.endswith("\n")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "model").exists()


# distribute_utils checks (in process; none changes TensorFlow's global state).


@pytest.fixture
def no_tf_config(monkeypatch):
    """Unsets TF_CONFIG for the test and restores it, or its absence, afterwards."""
    # `delenv` of an unset variable records nothing to undo, so set it first: a TF_CONFIG
    # written by the test is then removed again.
    monkeypatch.setenv("TF_CONFIG", "{}")
    monkeypatch.delenv("TF_CONFIG")


def test_an_unknown_strategy_lists_the_choices():
    with pytest.raises(ConfigError, match="'mirorred'; choose one of") as raised:
        distribute_utils.get_distribution_strategy("mirorred")
    for name in distribute_utils.STRATEGIES:
        assert name in str(raised.value)


@pytest.mark.parametrize("strategy", ["off", "mirrored", "one_device"])
def test_more_gpus_than_are_visible_is_a_config_error(strategy):
    visible = len(tf.config.list_logical_devices("GPU"))
    with pytest.raises(ConfigError, match=rf"`runtime.num_gpus` is {visible + 1} but"):
        distribute_utils.get_distribution_strategy(strategy, num_gpus=visible + 1)
    with pytest.raises(ConfigError, match=r"`runtime.num_gpus` is -1"):
        distribute_utils.get_distribution_strategy(strategy, num_gpus=-1)


@pytest.mark.usefixtures("no_tf_config")
def test_multi_worker_mirrored_without_tf_config_is_a_config_error():
    runtime = RuntimeConfig(distribution_strategy="multi_worker_mirrored")
    with pytest.raises(ConfigError, match="'multi_worker_mirrored' but TF_CONFIG names no"):
        distribute_utils.strategy_from_runtime(runtime)


def test_multi_worker_mirrored_with_bad_tf_config_is_a_config_error(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{cluster")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        distribute_utils.get_distribution_strategy("multi_worker_mirrored")


@pytest.mark.usefixtures("no_tf_config")
def test_worker_hosts_and_task_index_write_tf_config():
    runtime = RuntimeConfig(worker_hosts="127.0.0.1:1, 127.0.0.1:2", task_index=1)
    distribute_utils.configure_runtime(runtime)
    assert json.loads(os.environ["TF_CONFIG"]) == {
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 1},
    }


def test_a_set_tf_config_wins_over_worker_hosts(monkeypatch):
    existing = json.dumps(
        {"cluster": {"worker": ["10.0.0.1:2222"]}, "task": {"type": "worker", "index": 0}}
    )
    monkeypatch.setenv("TF_CONFIG", existing)
    distribute_utils.configure_runtime(
        RuntimeConfig(worker_hosts="127.0.0.1:1,127.0.0.1:2", task_index=1)
    )
    assert os.environ["TF_CONFIG"] == existing


@pytest.mark.usefixtures("no_tf_config")
@pytest.mark.parametrize("task_index", [-1, 2])
def test_a_task_index_outside_worker_hosts_is_a_config_error(task_index):
    runtime = RuntimeConfig(worker_hosts="127.0.0.1:1,127.0.0.1:2", task_index=task_index)
    with pytest.raises(ConfigError, match=rf"`runtime.task_index` is {task_index}.*2 worker"):
        distribute_utils.configure_runtime(runtime)
    assert "TF_CONFIG" not in os.environ


def test_a_bad_gpu_thread_mode_is_a_config_error(monkeypatch):
    monkeypatch.setenv("TF_GPU_THREAD_MODE", "global")  # So that undo removes it again.
    monkeypatch.delenv("TF_GPU_THREAD_MODE")
    with pytest.raises(ConfigError, match="`runtime.gpu_thread_mode` is 'gpu_everywhere'"):
        distribute_utils.configure_runtime(RuntimeConfig(gpu_thread_mode="gpu_everywhere"))
    assert "TF_GPU_THREAD_MODE" not in os.environ


def test_deterministic_ops_without_a_seed_is_a_config_error():
    with pytest.raises(ConfigError, match="`runtime.deterministic_ops` is true but `runtime.seed`"):
        distribute_utils.configure_runtime(RuntimeConfig(deterministic_ops=True))
