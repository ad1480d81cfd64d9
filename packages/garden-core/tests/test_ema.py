"""ExponentialMovingAverage: Model Garden's update rule against NumPy, swaps, distribution."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core.config.optimization import EMAConfig
from garden_core.optimization.ema import ExponentialMovingAverage


def _reference_decay(step, average_decay, start_step, dynamic_decay):
    """Model Garden's decay, written out in plain Python."""
    since_start = step - start_step
    if since_start < 0:
        return 0.0
    if dynamic_decay:
        return min(average_decay, (1.0 + since_start) / (10.0 + since_start))
    return average_decay


def _reference_averages(history, average_decay, start_step, dynamic_decay):
    """Averages after updating at steps 1..N; `history[k]` holds the weights after step k."""
    averages = [np.asarray(w, np.float64) for w in history[0]]
    for step, weights in enumerate(history[1:], start=1):
        decay = _reference_decay(step, average_decay, start_step, dynamic_decay)
        averages = [decay * a + (1.0 - decay) * w for a, w in zip(averages, weights, strict=True)]
    return averages


def _dense_model(inputs=2, units=3, seed=0):
    model = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    return model


def _values(variables):
    return [v.numpy() for v in variables]


def _assert_all_close(actual, expected, **tolerance):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, **{"rtol": 1e-5, "atol": 1e-6, **tolerance})


def test_decay_schedule_follows_model_garden():
    dynamic = ExponentialMovingAverage(_dense_model().weights, average_decay=0.99)
    assert float(dynamic.decay(0)) == pytest.approx(0.1)
    assert float(dynamic.decay(1)) == pytest.approx(2 / 11)
    assert float(dynamic.decay(tf.constant(90, tf.int64))) == pytest.approx(91 / 100)
    assert float(dynamic.decay(10_000)) == pytest.approx(0.99)

    delayed = ExponentialMovingAverage(
        _dense_model().weights, average_decay=0.9, start_step=5, dynamic_decay=False
    )
    assert float(delayed.decay(4)) == 0.0
    assert float(delayed.decay(5)) == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("dynamic_decay", "start_step"), [(True, 0), (False, 0), (True, 4), (False, 4)]
)
def test_update_matches_numpy_reference(dynamic_decay, start_step):
    model = _dense_model()
    ema = ExponentialMovingAverage(
        model.weights, average_decay=0.5, start_step=start_step, dynamic_decay=dynamic_decay
    )
    rng = np.random.default_rng(1)
    history = [model.get_weights()]
    for step in range(1, 15):  # Steps before start_step, on the ramp, and at the cap.
        model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
        history.append(model.get_weights())
        step_value = step if step % 2 else tf.constant(step, tf.int64)
        decay = ema.update(step_value)
        expected = _reference_decay(step, 0.5, start_step, dynamic_decay)
        assert float(decay) == pytest.approx(expected, rel=1e-6)

    expected = _reference_averages(history, 0.5, start_step, dynamic_decay)
    _assert_all_close(_values(ema.averages), expected)
    # The model's own weights are left alone.
    _assert_all_close(model.get_weights(), history[-1], rtol=0, atol=0)


def test_averages_start_at_the_variables_and_skip_non_float_and_duplicates():
    model = _dense_model()
    counter = tf.Variable(3, dtype=tf.int64)
    extra = tf.Variable([1.0, 2.0])
    ema = ExponentialMovingAverage([*model.weights, model.weights[0], counter, extra])

    assert len(ema.averages) == 3
    assert ema.model_variables[2] is extra
    _assert_all_close(_values(ema.averages), [*model.get_weights(), extra.numpy()], atol=0)
    assert all(not average.trainable for average in ema.averages)
    assert all(
        a.dtype == v.dtype and a.shape == v.shape
        for a, v in zip(ema.averages, ema.model_variables, strict=True)
    )


def test_invalid_arguments_are_rejected():
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="build the model"):
        ExponentialMovingAverage.from_config(EMAConfig(), unbuilt)
    with pytest.raises(ValueError, match="average_decay"):
        ExponentialMovingAverage(_dense_model().weights, average_decay=1.5)
    with pytest.raises(TypeError, match="ndarray"):
        ExponentialMovingAverage([np.ones(3)])


@pytest.mark.parametrize("trainable_weights_only", [True, False])
def test_trainable_weights_only_decides_whether_batch_norm_statistics_are_averaged(
    trainable_weights_only,
):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4), keras.layers.BatchNormalization()]
    )
    config = EMAConfig(
        trainable_weights_only=trainable_weights_only, average_decay=0.5, dynamic_decay=False
    )
    ema = ExponentialMovingAverage.from_config(config, model)
    assert ema.name == "ExponentialMovingAverage"
    batch_norm = model.layers[-1]
    moving_mean = batch_norm.moving_mean
    initial_mean = moving_mean.numpy()

    # A training-mode forward pass moves the statistics; the trainable weights stay.
    data = np.random.default_rng(2).normal(3.0, 1.0, size=(16, 4)).astype("float32")
    model(data, training=True)
    trained_mean = moving_mean.numpy()
    assert not np.allclose(trained_mean, initial_mean)
    ema.update(1)

    if trainable_weights_only:
        assert len(ema.averages) == len(model.trainable_weights) == 4
        expected_inside = trained_mean
    else:
        assert len(ema.averages) == len(model.weights) == 6
        expected_inside = 0.5 * initial_mean + 0.5 * trained_mean
    with ema.averaged_weights():
        np.testing.assert_allclose(moving_mean.numpy(), expected_inside, rtol=1e-6)
    np.testing.assert_array_equal(moving_mean.numpy(), trained_mean)


def test_averaged_weights_swaps_in_for_prediction_and_back_even_on_error():
    model = _dense_model()
    ema = ExponentialMovingAverage(model.trainable_weights, average_decay=0.5, dynamic_decay=False)
    initial = model.get_weights()
    model.set_weights([w + 1.0 for w in initial])
    ema.update(1)
    trained = model.get_weights()
    averaged = [0.5 * a + 0.5 * b for a, b in zip(initial, trained, strict=True)]

    reference = _dense_model()
    reference.set_weights(averaged)
    data = np.random.default_rng(3).normal(size=(5, 2)).astype("float32")
    trained_predictions = model.predict(data, verbose=0)

    with ema.averaged_weights():
        np.testing.assert_allclose(
            model.predict(data, verbose=0), reference.predict(data, verbose=0), rtol=1e-6
        )
        _assert_all_close(_values(ema.averages), trained, rtol=0, atol=0)
    _assert_all_close(model.get_weights(), trained, rtol=0, atol=0)
    np.testing.assert_array_equal(model.predict(data, verbose=0), trained_predictions)

    with pytest.raises(RuntimeError, match="evaluation failed"), ema.averaged_weights():
        raise RuntimeError("evaluation failed")
    _assert_all_close(model.get_weights(), trained, rtol=0, atol=0)
    _assert_all_close(_values(ema.averages), averaged, rtol=1e-6)


def test_swap_weights_eagerly_and_in_tf_function_is_exact():
    model = _dense_model()
    ema = ExponentialMovingAverage(model.weights)
    model.set_weights([w * 3.1 + 0.7 for w in model.get_weights()])
    ema.update(5)
    trained, averages = model.get_weights(), _values(ema.averages)

    ema.swap_weights()
    _assert_all_close(model.get_weights(), averages, rtol=0, atol=0)
    tf.function(ema.swap_weights)()
    _assert_all_close(model.get_weights(), trained, rtol=0, atol=0)
    _assert_all_close(_values(ema.averages), averages, rtol=0, atol=0)


def test_assign_average_to_model_and_reset():
    model = _dense_model()
    ema = ExponentialMovingAverage(model.weights, average_decay=0.5, dynamic_decay=False)
    model.set_weights([w + 2.0 for w in model.get_weights()])
    ema.update(1)
    averages = _values(ema.averages)

    ema.assign_average_to_model()
    _assert_all_close(model.get_weights(), averages, rtol=0, atol=0)

    model.set_weights([w - 5.0 for w in model.get_weights()])
    ema.reset()
    _assert_all_close(_values(ema.averages), model.get_weights(), rtol=0, atol=0)


def test_update_in_tf_function_train_step_with_keras_optimizer():
    model = _dense_model()
    optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.5)
    optimizer.build(model.trainable_variables)
    ema = ExponentialMovingAverage(model.trainable_weights, average_decay=0.9, start_step=3)
    rng = np.random.default_rng(4)
    features = tf.constant(rng.normal(size=(8, 2)), tf.float32)
    targets = tf.constant(rng.normal(size=(8, 3)), tf.float32)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return ema.update(optimizer.iterations)

    history = [model.get_weights()]
    decays = []
    for _ in range(6):
        decays.append(float(train_step(features, targets)))
        history.append(model.get_weights())

    assert int(optimizer.iterations.numpy()) == 6
    expected_decays = [_reference_decay(step, 0.9, 3, True) for step in range(1, 7)]
    np.testing.assert_allclose(decays, expected_decays, rtol=1e-6)
    assert not np.allclose(history[-1][0], history[0][0])
    _assert_all_close(_values(ema.averages), _reference_averages(history, 0.9, 3, True))


def test_mixed_precision_layers_keep_float32_averages():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, dtype="mixed_float16")])
    ema = ExponentialMovingAverage(model.trainable_weights)
    assert all(average.dtype == tf.float32 for average in ema.averages)
    model.set_weights([w + 1.0 for w in model.get_weights()])
    ema.update(1)
    with ema.averaged_weights():
        outputs = model(np.ones((1, 2), "float32"))
    assert outputs.dtype == "float16"


def test_checkpoint_saves_only_the_averages_and_restores_them(tmp_path):
    model = _dense_model(seed=5)
    ema = ExponentialMovingAverage(model.weights, average_decay=0.5, dynamic_decay=False)
    model.set_weights([w + 1.0 for w in model.get_weights()])
    ema.update(1)
    saved_averages, saved_weights = _values(ema.averages), model.get_weights()

    ema_only = tf.train.Checkpoint(ema=ema).save(str(tmp_path / "ema_only" / "ckpt"))
    keys = {name for name, _ in tf.train.list_variables(ema_only)}
    assert {k for k in keys if k.startswith("ema/")} == {
        "ema/_averages/0/.ATTRIBUTES/VARIABLE_VALUE",
        "ema/_averages/1/.ATTRIBUTES/VARIABLE_VALUE",
    }

    path = tf.train.Checkpoint(model=model, ema=ema).save(str(tmp_path / "full" / "ckpt"))
    fresh_model = _dense_model(seed=6)
    fresh_ema = ExponentialMovingAverage(fresh_model.weights)
    assert not np.allclose(fresh_ema.averages[0].numpy(), saved_averages[0])
    tf.train.Checkpoint(model=fresh_model, ema=fresh_ema).restore(path).assert_consumed()
    _assert_all_close(_values(fresh_ema.averages), saved_averages, rtol=0, atol=0)
    _assert_all_close(fresh_model.get_weights(), saved_weights, rtol=0, atol=0)

    with fresh_ema.averaged_weights():  # The restored averages are wired to the new model.
        _assert_all_close(fresh_model.get_weights(), saved_averages, rtol=0, atol=0)


# Runs in a fresh interpreter: logical devices must be configured before TF initialises.
_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

    import keras
    import numpy as np

    from garden_core.optimization.ema import ExponentialMovingAverage

    GLOBAL_BATCH, STEPS = 8, 5
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32")]
    features = rng.normal(size=(GLOBAL_BATCH * STEPS, 3)).astype("float32")
    targets = rng.normal(size=(GLOBAL_BATCH * STEPS, 2)).astype("float32")


    def train(strategy):
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            model.set_weights(initial)
            optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
            optimizer.build(model.trainable_variables)
            ema = ExponentialMovingAverage(model.trainable_weights, average_decay=0.9)
        dataset = tf.data.Dataset.from_tensor_slices((features, targets)).batch(GLOBAL_BATCH)
        iterator = iter(strategy.experimental_distribute_dataset(dataset))

        @tf.function
        def train_step(batch):
            def step_fn(x, y):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.square(model(x) - y)) / GLOBAL_BATCH
                gradients = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(gradients, model.trainable_variables))
                ema.update(optimizer.iterations)

            strategy.run(step_fn, args=batch)

        for _ in range(STEPS):
            train_step(next(iterator))
        return strategy, model, ema


    mirrored, model, ema = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    _, _, single_ema = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    result = {
        "replicas": mirrored.num_replicas_in_sync,
        "mirrored": [
            [r.numpy().tolist() for r in mirrored.experimental_local_results(a)]
            for a in ema.averages
        ],
        "single": [a.numpy().tolist() for a in single_ema.averages],
        "trained": [w.numpy().tolist() for w in model.trainable_weights],
    }
    with mirrored.scope(), ema.averaged_weights():
        result["swapped"] = [
            [r.numpy().tolist() for r in mirrored.experimental_local_results(v)]
            for v in ema.model_variables
        ]
    result["after"] = [w.numpy().tolist() for w in model.trainable_weights]
    try:
        mirrored.run(ema.swap_weights)
        result["replica_swap_error"] = None
    except RuntimeError as error:
        result["replica_swap_error"] = str(error)
    json.dump(result, sys.stdout)
    """
)


@pytest.mark.slow
def test_mirrored_strategy_updates_in_replica_context_like_a_single_device():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout)

    assert result["replicas"] == 2
    for per_replica, single in zip(result["mirrored"], result["single"], strict=True):
        first, second = (np.asarray(r) for r in per_replica)
        np.testing.assert_array_equal(first, second)  # Written once, mirrored to both.
        np.testing.assert_allclose(first, single, rtol=1e-5, atol=1e-6)
    # The averages moved away from the trained weights (training took place).
    assert not np.allclose(result["mirrored"][0][0], result["trained"][0])
    for per_replica, replicated_average in zip(result["swapped"], result["mirrored"], strict=True):
        for value, average in zip(per_replica, replicated_average, strict=True):
            np.testing.assert_array_equal(value, average)
    for after, trained in zip(result["after"], result["trained"], strict=True):
        np.testing.assert_array_equal(after, trained)
    assert "cross-replica context" in result["replica_swap_error"]
