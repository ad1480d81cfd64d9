"""SIGKILL during `garden train` or `garden export`, then the same command again, in real
subprocesses.

- A `mock` run killed mid-loop and mid-epoch resumes from its last checkpoint (not from step
  0) and ends with a checkpoint equal to that of an uninterrupted run: every variable,
  optimizer slots included, and the position in the training data.
- The same under `one_device`, `mirrored` (two logical CPUs) and `multi_worker_mirrored`
  (two worker processes on loopback, both killed): the checkpoint holds the number of
  batches drawn, the rerun fast-forwards its data by it, and the final checkpoint equals an
  uninterrupted run's under the same strategy.
- What a kill during a checkpoint write leaves behind (a `ckpt-N_temp/` shard folder, data
  without an index, a truncated index, a temporary `checkpoint` state file) is never picked
  up: the rerun resumes from the last complete checkpoint and ends the same.
- A leftover temporary export (`.NAME.tmp-*`), whether planted or left by a `garden export`
  killed while writing, never becomes the export: the export appears at its final name only
  when complete, reloads and serves; an existing export is never overwritten.

The kills are deterministic, without sleeps: the worker `workers/garden_until_killed.py`
runs the `garden` command in-process with a kill switch (see there). The runs that are not
killed use the installed `garden` console script, as a user types them (two quick export
checks call `garden_core.cli.main` in this process instead).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core import cli, experiment_factory, export_base, task_factory
from garden_core.config import override_config

WORKER = Path(__file__).parent / "workers" / "garden_until_killed.py"
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
TIMEOUT_S = 300

TRAIN_STEPS = 60
STEPS_PER_LOOP = 10
CHECKPOINT_INTERVAL = 20
NUM_EXAMPLES = 224  # With the global batch of 32: 7 steps an epoch, ending mid-loop.
STEPS_PER_EPOCH = NUM_EXAMPLES // 32
OVERRIDES = ",".join(
    [
        f"trainer.train_steps={TRAIN_STEPS}",
        f"trainer.steps_per_loop={STEPS_PER_LOOP}",
        f"trainer.checkpoint_interval={CHECKPOINT_INTERVAL}",
        f"trainer.summary_interval={STEPS_PER_LOOP}",
        "runtime.seed=1",
        "runtime.deterministic_ops=true",
        f"task.train_data.num_examples={NUM_EXAMPLES}",
    ]
)
# The kill comes with 47 steps done: inside the loop of steps 41-50 and inside an epoch.
# TensorFlow's CheckpointManager saves the first loop's checkpoint and then each one at
# least `checkpoint_interval` steps after the previous save: ckpt-10, ckpt-30, ckpt-50 and
# ckpt-60 at the end. So the last checkpoint before the kill is ckpt-30, itself mid-epoch.
KILL_AFTER_STEP = 47
LAST_CHECKPOINT_BEFORE_KILL = 30
NEXT_CHECKPOINT = 50  # The save a kill can interrupt before training resumes past it.


def garden_command() -> list[str]:
    """The installed `garden` console script (or its equivalent where there is none)."""
    script = Path(sys.executable).parent / "garden"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from garden_core import cli; sys.exit(cli.main())"]


def train_args(model_dir: Path) -> list[str]:
    return [
        "train",
        "--experiment",
        "mock",
        "--mode",
        "train",
        "--model_dir",
        str(model_dir),
        "--params_override",
        OVERRIDES,
    ]


def export_args(checkpoint_path: Path, export_dir: Path) -> list[str]:
    return [
        "export",
        "--experiment",
        "mock",
        "--params_override",
        OVERRIDES,
        "--checkpoint_path",
        str(checkpoint_path),
        "--export_dir",
        str(export_dir),
    ]


def start(args: list[str], kill_switch: list[str] | None = None) -> subprocess.Popen:
    """Starts `garden ARGS` (through the kill-switch worker when `kill_switch` is given)."""
    if kill_switch is None:
        command = garden_command() + args
    else:
        command = [sys.executable, str(WORKER), *kill_switch, "--", *args]
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"{process.args} timed out:\n{out[-2000:]}\n{err[-2000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run(args: list[str], kill_switch: list[str] | None = None) -> subprocess.CompletedProcess:
    return finish(start(args, kill_switch))


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def assert_killed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == -signal.SIGKILL, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "killing myself" in result.stdout


def train_steps_logged(model_dir: Path) -> list[int]:
    """The steps of the `train` lines of `metrics.jsonl`, in the order written."""
    records = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    return [record["step"] for record in records if record["mode"] == "train"]


def checkpoint_step(prefix: str) -> int:
    return int(re.fullmatch(r".*ckpt-(\d+)", prefix).group(1))


def next_batches(checkpoint: str, count: int) -> list[np.ndarray]:
    """The next `count` training batches from the data position saved in `checkpoint`."""
    params = experiment_factory.get_experiment_config("mock")
    override_config(params, [], OVERRIDES)
    # Seeded as `run_experiment` seeds a run: the order of the epochs after the saved one
    # comes from the shuffle's seed generator, re-created from the process's seeds.
    keras.utils.set_random_seed(params.runtime.seed)
    task = task_factory.get_task(params.task)
    iterator = iter(task.build_inputs(params.task.train_data))
    tf.train.Checkpoint(train_iterator=iterator).read(checkpoint).expect_partial()
    batches = []
    for _ in range(count):
        features, labels = next(iterator)
        batches += [features.numpy(), labels.numpy()]
    return batches


def assert_same_checkpoint(checkpoint: str, reference: str) -> None:
    """Both checkpoints hold equal values: every variable and the training-data position."""
    reader = tf.train.load_checkpoint(checkpoint)
    reference_reader = tf.train.load_checkpoint(reference)
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes == reference_reader.get_variable_to_dtype_map()
    # Weights, the optimizer's step counter and momentum slots, global_step, save counter.
    assert "global_step/.ATTRIBUTES/VARIABLE_VALUE" in dtypes
    assert "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE" in dtypes
    assert sum(key.startswith("optimizer/_variables/") for key in dtypes) == 4  # Momenta.
    for key, dtype in dtypes.items():
        if dtype != tf.variant:  # The data position, compared below by reading on.
            np.testing.assert_array_equal(
                reader.get_tensor(key), reference_reader.get_tensor(key), err_msg=key
            )
    assert "train_iterator/.ATTRIBUTES/ITERATOR_STATE" in dtypes
    # Two epochs and a bit: the same batches in the same order, across epoch ends.
    for batch, reference_batch in zip(
        next_batches(checkpoint, 2 * STEPS_PER_EPOCH + 2),
        next_batches(reference, 2 * STEPS_PER_EPOCH + 2),
        strict=True,
    ):
        np.testing.assert_array_equal(batch, reference_batch)


def assert_same_final_checkpoint(model_dir: Path, reference_dir: Path) -> None:
    """The latest checkpoints of both folders are at `TRAIN_STEPS` and equal."""
    checkpoint = tf.train.latest_checkpoint(str(model_dir))
    reference = tf.train.latest_checkpoint(str(reference_dir))
    assert checkpoint_step(checkpoint) == checkpoint_step(reference) == TRAIN_STEPS
    reader = tf.train.load_checkpoint(checkpoint)
    assert reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == TRAIN_STEPS
    assert_same_checkpoint(checkpoint, reference)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted `garden train` run, and the same command killed after 47 steps."""
    root = tmp_path_factory.mktemp("runs")
    reference_dir, killed_dir = root / "reference", root / "killed"
    reference = start(train_args(reference_dir))
    killed = start(train_args(killed_dir), ["--kill_after_step", str(KILL_AFTER_STEP)])
    assert_succeeded(finish(reference))
    assert_killed(finish(killed))
    return reference_dir, killed_dir


def copy_of(model_dir: Path, destination: Path) -> Path:
    """A copy of a run's folder (its `checkpoint` state file names checkpoints relatively)."""
    shutil.copytree(model_dir, destination)
    return destination


def assert_resumed_from_last_checkpoint(
    result: subprocess.CompletedProcess, model_dir: Path
) -> None:
    assert_succeeded(result)
    last = model_dir / f"ckpt-{LAST_CHECKPOINT_BEFORE_KILL}"
    assert f"restored from checkpoint: {last}\n" in result.stdout
    assert re.search(
        rf"train \| step: +{LAST_CHECKPOINT_BEFORE_KILL} \| training until step {TRAIN_STEPS}",
        result.stdout,
    ), result.stdout


def plant_partial_checkpoint(model_dir: Path, reference_dir: Path, moment: str) -> None:
    """Leaves in `model_dir` what a kill while saving ckpt-50 leaves at `moment`.

    As if the rerun of the killed run had been killed again, this time while saving
    ckpt-50: the last complete checkpoint is still ckpt-30.

    Observed in TensorFlow 2.21 (`CheckpointManager.save`): the saver writes the shard's data
    file `ckpt-50_temp/part-00000-of-00001.data-00000-of-00001`, then the shard's index
    (through a `.tempstate<digits>` file renamed into place); `MergeV2Checkpoints` then
    renames the data file to `ckpt-50.data-00000-of-00001`, writes `ckpt-50.index` in place
    and removes the temporary folder; only then does the manager record the checkpoint in
    the `checkpoint` state file, atomically (a `checkpoint.tmp<hex>` file renamed over it).
    The bytes are those the killed run was writing: the reference run's ckpt-50.
    """
    name = f"ckpt-{NEXT_CHECKPOINT}"
    data = (reference_dir / f"{name}.data-00000-of-00001").read_bytes()
    index = (reference_dir / f"{name}.index").read_bytes()
    shard = model_dir / f"{name}_temp" / "part-00000-of-00001"
    if moment == "writing the shard":
        shard.parent.mkdir()
        Path(f"{shard}.data-00000-of-00001").write_bytes(data[: len(data) // 2])
        Path(f"{shard}.index.tempstate{uuid.uuid4().int % 10**19}").write_bytes(index[:40])
    elif moment == "merging":
        shard.parent.mkdir()
        Path(f"{shard}.index").write_bytes(index)
        (model_dir / f"{name}.data-00000-of-00001").write_bytes(data)
        (model_dir / f"{name}.index").write_bytes(index[: len(index) // 2])
    elif moment == "recording the checkpoint":
        (model_dir / f"{name}.data-00000-of-00001").write_bytes(data)
        (model_dir / f"{name}.index").write_bytes(index)
        state = (model_dir / "checkpoint").read_text()
        state = re.sub(
            r'^model_checkpoint_path: ".*"$', f'model_checkpoint_path: "{name}"', state, flags=re.M
        )
        (model_dir / f"checkpoint.tmp{uuid.uuid4().hex}").write_text(
            f'{state}all_model_checkpoint_paths: "{name}"\n'
        )
    else:
        raise ValueError(moment)
    # The kill came before the state file named ckpt-50.
    latest = tf.train.latest_checkpoint(str(model_dir))
    assert checkpoint_step(latest) == LAST_CHECKPOINT_BEFORE_KILL


PARTIAL_SAVE_MOMENTS = ("writing the shard", "merging", "recording the checkpoint")


@pytest.fixture(scope="module")
def resumed(runs, tmp_path_factory):
    """The same `garden train` command again on copies of the killed run's folder: one as
    the kill left it, one with each leftover of a partial save planted. The reruns run side
    by side; returns {case: (model_dir, result)}."""
    reference_dir, killed_dir = runs
    root = tmp_path_factory.mktemp("resumed")
    model_dirs = {}
    for case in ("as killed", *PARTIAL_SAVE_MOMENTS):
        model_dirs[case] = copy_of(killed_dir, root / case.replace(" ", "_"))
        if case != "as killed":
            plant_partial_checkpoint(model_dirs[case], reference_dir, case)
    processes = {case: start(train_args(model_dir)) for case, model_dir in model_dirs.items()}
    return {case: (model_dirs[case], finish(process)) for case, process in processes.items()}


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint_and_ends_as_an_uninterrupted_one(
    runs, resumed
):
    reference_dir, killed_dir = runs
    # The kill came after a checkpoint, between checkpoints, inside a loop and an epoch.
    assert KILL_AFTER_STEP % STEPS_PER_LOOP != 0
    assert KILL_AFTER_STEP % STEPS_PER_EPOCH != 0
    assert LAST_CHECKPOINT_BEFORE_KILL % STEPS_PER_EPOCH != 0  # The data position matters.
    latest = tf.train.latest_checkpoint(str(killed_dir))
    assert checkpoint_step(latest) == LAST_CHECKPOINT_BEFORE_KILL
    assert train_steps_logged(killed_dir) == [10, 20, 30, 40]
    assert not list(killed_dir.glob(f"ckpt-{NEXT_CHECKPOINT}*"))

    model_dir, result = resumed["as killed"]  # The same command again.

    assert_resumed_from_last_checkpoint(result, model_dir)
    # The killed run logged steps 10-40; the rerun logs from the loop after ckpt-30 on.
    assert train_steps_logged(model_dir) == [10, 20, 30, 40, 40, 50, 60]
    assert_same_final_checkpoint(model_dir, reference_dir)


@pytest.mark.slow
@pytest.mark.parametrize("moment", PARTIAL_SAVE_MOMENTS)
def test_a_partially_written_checkpoint_is_never_picked_up(runs, resumed, moment):
    reference_dir, _ = runs
    model_dir, result = resumed[moment]  # Planted before the rerun: see the fixture.

    assert_resumed_from_last_checkpoint(result, model_dir)
    assert_same_final_checkpoint(model_dir, reference_dir)
    # The rerun wrote ckpt-50 again, completely, over what the kill had left.
    name = f"ckpt-{NEXT_CHECKPOINT}"
    assert_same_checkpoint(str(model_dir / name), str(reference_dir / name))


# The same kill and rerun under each distribution strategy. The data position of a
# distributed iterator is saved as the number of batches drawn (`train_data_position`), and
# a rerun fast-forwards the new iterator by that many batches.

# name: (logical CPUs per process, worker processes).
STRATEGIES = {"one_device": (1, 1), "mirrored": (2, 1), "multi_worker_mirrored": (1, 2)}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_cluster(strategy: str, model_dir: Path, kill: bool) -> list[subprocess.Popen]:
    """Starts the processes of one `garden train` run under `strategy` (through the worker,
    which splits the CPU and, with `kill`, dies after `KILL_AFTER_STEP` steps)."""
    logical_cpus, workers = STRATEGIES[strategy]
    args = train_args(model_dir)
    args[-1] += f",runtime.distribution_strategy={strategy}"
    options = ["--logical_cpus", str(logical_cpus)]
    if kill:
        options += ["--kill_after_step", str(KILL_AFTER_STEP)]
    hosts = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in range(workers):
        env = {**ENV}
        env.pop("TF_CONFIG", None)
        if workers > 1:
            cluster = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
            env["TF_CONFIG"] = json.dumps(cluster)
        command = [sys.executable, str(WORKER), *options, "--", *args]
        processes.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    return processes


def assert_same_distributed_checkpoint(checkpoint: str, reference: str) -> None:
    """Both checkpoints hold the same variables with equal values, the data position too."""
    reader = tf.train.load_checkpoint(checkpoint)
    reference_reader = tf.train.load_checkpoint(reference)
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes == reference_reader.get_variable_to_dtype_map()
    assert sum(key.startswith("optimizer/_variables/") for key in dtypes) == 4  # Momenta.
    assert not any(key.startswith("train_iterator/") for key in dtypes)
    # One batch a step, counted across the kill: the rerun fast-forwarded past the 30
    # batches of ckpt-30 and drew the last 30.
    assert reader.get_tensor("train_data_position/.ATTRIBUTES/VARIABLE_VALUE") == TRAIN_STEPS
    for key in dtypes:
        np.testing.assert_array_equal(
            reader.get_tensor(key), reference_reader.get_tensor(key), err_msg=key
        )


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_killed_distributed_run_resumes_at_its_data_position(strategy, tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = start_cluster(strategy, reference_dir, kill=False)
    killed = start_cluster(strategy, killed_dir, kill=True)
    for process in reference:
        assert_succeeded(finish(process))
    chief, *others = [finish(process) for process in killed]
    assert_killed(chief)
    for other in others:
        # Killed at the same step, or stopped by the chief's death inside a collective.
        assert other.returncode != 0
    latest = tf.train.latest_checkpoint(str(killed_dir))
    assert checkpoint_step(latest) == LAST_CHECKPOINT_BEFORE_KILL
    saved = tf.train.load_checkpoint(latest)
    position = saved.get_tensor("train_data_position/.ATTRIBUTES/VARIABLE_VALUE")
    assert position == LAST_CHECKPOINT_BEFORE_KILL  # Mid-epoch: 30 = 4 epochs of 7 + 2.

    rerun = [finish(process) for process in start_cluster(strategy, killed_dir, kill=False)]

    for result in rerun:
        assert_succeeded(result)
    assert_resumed_from_last_checkpoint(rerun[0], killed_dir)
    checkpoint = tf.train.latest_checkpoint(str(killed_dir))
    reference_checkpoint = tf.train.latest_checkpoint(str(reference_dir))
    assert checkpoint_step(checkpoint) == checkpoint_step(reference_checkpoint) == TRAIN_STEPS
    assert_same_distributed_checkpoint(checkpoint, reference_checkpoint)


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def assert_serves_the_checkpoint(export_dir: Path, checkpoint_dir: Path) -> None:
    """The SavedModel reloads and its `serving_default` predicts as the checkpoint's model."""
    assert (export_dir / "saved_model.pb").is_file()
    served = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    features = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    outputs = served(features=tf.constant(features))
    assert set(outputs) == {"logits", "probabilities", "classes"}
    params = experiment_factory.get_experiment_config("mock")
    override_config(params, [], OVERRIDES)
    model = task_factory.get_task(params.task).build_model()
    checkpoint = tf.train.latest_checkpoint(str(checkpoint_dir))
    tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
    expected = model(features, training=False).numpy()
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outputs["classes"].numpy(), expected.argmax(axis=-1))


def temporaries(export_dir: Path) -> list[Path]:
    return sorted(export_dir.parent.glob(f".{export_dir.name}.tmp-*"))


@pytest.mark.slow
def test_a_leftover_temporary_export_is_not_picked_up_and_is_cleared(runs, tmp_path, capsys):
    reference_dir, _ = runs
    export_dir = tmp_path / "exports" / "mock"
    leftover = export_dir.parent / f".mock.tmp-{dead_pid()}-123456789"
    (leftover / "variables").mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"half a protocol buffer")
    (leftover / "variables" / "variables.index").write_bytes(b"\0" * 10)

    status = cli.main(export_args(reference_dir, export_dir))  # In this process: quicker.

    assert status == 0
    assert f"exported {reference_dir / 'ckpt-60'} to {export_dir}" in capsys.readouterr().out
    assert_serves_the_checkpoint(export_dir, reference_dir)
    assert temporaries(export_dir) == []  # The dead exporter's leftover is gone too.


@pytest.mark.slow
def test_exporting_into_an_existing_directory_fails_in_one_line_and_leaves_it_alone(
    runs, tmp_path, capsys
):
    reference_dir, _ = runs
    export_dir = tmp_path / "mock"
    (export_dir / "variables").mkdir(parents=True)
    (export_dir / "saved_model.pb").write_bytes(b"an earlier export")

    def snapshot():
        return sorted(
            (str(path.relative_to(export_dir)), path.stat().st_mtime_ns, path.is_dir())
            for path in export_dir.rglob("*")
        ) + [(export_dir / "saved_model.pb").read_bytes()]

    before = snapshot()
    status = cli.main(export_args(reference_dir, export_dir))

    assert status != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(r"garden: error: --export_dir .* already exists; [^\n]*\n", captured.err)
    assert snapshot() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mock"]  # No temporary left.


@pytest.mark.slow
def test_an_export_killed_while_writing_leaves_no_export_and_a_rerun_completes(runs, tmp_path):
    reference_dir, _ = runs
    export_dir = tmp_path / "mock"
    args = export_args(reference_dir, export_dir)

    process = start(args, ["--kill_after_export_write"])
    killed = finish(process)

    assert_killed(killed)
    assert not export_dir.exists()
    [leftover] = temporaries(export_dir)  # What the killed export had written.
    assert leftover.name.startswith(f".mock.tmp-{process.pid}-")
    assert (leftover / "saved_model.pb").is_file()

    rerun = run(args)  # The same command again.

    assert_succeeded(rerun)
    assert_serves_the_checkpoint(export_dir, reference_dir)
    assert temporaries(export_dir) == []


def test_export_clears_only_the_leftovers_of_dead_exporters_to_the_same_target(tmp_path):
    params = experiment_factory.get_experiment_config("mock")
    task = task_factory.get_task(params.task)
    module = task.build_export_module(task.build_model(), params)
    dead, alive = dead_pid(), os.getpid()
    leftovers = {
        f".mock.tmp-{dead}-1": False,  # Killed while exporting here: removed.
        f".mock.tmp-{alive}-2": True,  # Maybe an export under way: kept.
        f".other.tmp-{dead}-3": True,  # Another target's: kept.
        ".mock.tmp-notes": True,  # Not a name export writes: kept.
    }
    for name in leftovers:
        (tmp_path / name).mkdir()

    export_base.export(module, str(tmp_path / "mock"))

    assert (tmp_path / "mock" / "saved_model.pb").is_file()
    assert {name: (tmp_path / name).exists() for name in leftovers} == leftovers
