"""Training under tf.distribute: default, MirroredStrategy and MultiWorkerMirroredStrategy."""

import os
import socket
import subprocess
import sys

import numpy as np
import orbit_testing as ot
import pytest

import garden_orbit as orbit
from garden_orbit._tensorflow import tf

WORKERS = os.path.join(os.path.dirname(__file__), "workers")


def _train_weights(strategy, steps=10, steps_per_loop=2):
    with strategy.scope():
        dataset = orbit.utils.make_distributed_dataset(strategy, ot.regression_dataset())
        trainer = ot.RegressionTrainer(dataset)
    controller = orbit.Controller(
        trainer=trainer,
        global_step=trainer.global_step,
        strategy=strategy,
        steps_per_loop=steps_per_loop,
        show_progress=False,
    )
    controller.train(steps=steps)
    assert trainer.global_step.numpy() == steps
    return trainer.model.weights()


def test_mirrored_strategy_matches_the_default_strategy():
    reference = _train_weights(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    np.testing.assert_allclose(_train_weights(mirrored), reference, rtol=1e-5, atol=1e-6)


def test_mirrored_strategy_stops_at_the_end_of_the_data():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        dataset = strategy.experimental_distribute_dataset(ot.regression_dataset(80, repeat=False))
        trainer = ot.RegressionTrainer(dataset)
    controller = orbit.Controller(
        trainer=trainer, global_step=trainer.global_step, steps_per_loop=3, show_progress=False
    )
    controller.train()
    assert trainer.global_step.numpy() == 10


def test_make_distributed_dataset_passes_the_input_context():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    contexts = []

    def dataset_fn(global_batch_size, input_context=None):
        contexts.append(input_context)
        per_replica = input_context.get_per_replica_batch_size(global_batch_size)
        return tf.data.Dataset.range(100).batch(per_replica)

    dataset = orbit.utils.make_distributed_dataset(strategy, dataset_fn, 8)
    batch = next(iter(dataset))
    assert contexts[0].num_replicas_in_sync == 2
    assert [int(t.shape[0]) for t in strategy.experimental_local_results(batch)] == [4, 4]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_on_two_local_processes(tmp_path):
    steps = 10
    ports = ",".join(map(str, _free_ports(2)))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.join(WORKERS, "multi_worker_train.py"),
                str(index),
                ports,
                str(tmp_path),
                str(steps),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=300)[0])
    finally:
        for worker in workers:
            worker.kill()
    for index, worker in enumerate(workers):
        assert worker.returncode == 0, f"worker {index} failed:\n{outputs[index][-3000:]}"
    weights = [np.load(tmp_path / f"worker_{i}" / "weights.npy") for i in range(2)]
    np.testing.assert_array_equal(weights[0], weights[1])
    reference = _train_weights(tf.distribute.get_strategy(), steps=steps)
    np.testing.assert_allclose(weights[0], reference, rtol=1e-5, atol=1e-6)
    # Only the chief writes metrics.jsonl.
    assert (tmp_path / "worker_0" / "metrics.jsonl").exists()
    assert not (tmp_path / "worker_1" / "metrics.jsonl").exists()
