"""Training on a real accelerator; these run only in the `gpu` / `tpu` nox sessions."""

import orbit_testing as ot
import pytest

import garden_orbit as orbit
from garden_orbit._tensorflow import tf


@pytest.mark.gpu
def test_controller_trains_on_the_gpu():
    gpus = tf.config.list_logical_devices("GPU")
    assert gpus, "the gpu session must see a GPU"
    with tf.device(gpus[0].name):
        trainer = ot.RegressionTrainer(ot.regression_dataset())
    assert "GPU" in trainer.model.w.device
    controller = orbit.Controller(
        trainer=trainer, global_step=trainer.global_step, steps_per_loop=5, show_progress=False
    )
    controller.train(steps=50)
    assert trainer.global_step.numpy() == 50
    assert ot.numpy_mse(trainer.model) < 0.05


@pytest.mark.tpu
def test_controller_trains_on_a_tpu():
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="")
    strategy = tf.distribute.TPUStrategy(resolver)
    with strategy.scope():
        dataset = orbit.utils.make_distributed_dataset(strategy, ot.regression_dataset())
        trainer = ot.RegressionTrainer(dataset)
    controller = orbit.Controller(
        trainer=trainer,
        global_step=trainer.global_step,
        strategy=strategy,
        steps_per_loop=5,
        show_progress=False,
    )
    controller.train(steps=50)
    assert trainer.global_step.numpy() == 50
