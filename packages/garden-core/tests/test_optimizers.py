"""Optimizers built from OptimizationConfig, with LARS and LAMB checked against NumPy."""

import keras
import numpy as np
import pytest

from garden_core.config import ConfigError, OptimizationConfig
from garden_core.optimization import LAMB, LARS, AdamWeightDecay, build_optimizer
from garden_core.optimization.optimizers import SGD, Adam

KERAS_CLASSES = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamWeightDecay,
    "lamb": LAMB,
    "lars": LARS,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adafactor": keras.optimizers.Adafactor,
    "lion": keras.optimizers.Lion,
}


def _config(**overrides):
    config = OptimizationConfig()
    config.override({"learning_rate": {"type": "constant", "constant": {"learning_rate": 0.1}}})
    config.override(overrides)
    return config


@pytest.mark.parametrize("kind", sorted(KERAS_CLASSES))
def test_every_optimizer_type_builds_and_takes_a_step(kind):
    config = _config(optimizer={"type": kind, kind: {"clipnorm": 1.0}})
    optimizer = build_optimizer(config)
    assert type(optimizer) is KERAS_CLASSES[kind]
    assert optimizer.clipnorm == 1.0
    variable = keras.Variable(np.ones((3, 4), "float32"))
    optimizer.apply_gradients([(keras.ops.ones((3, 4)), variable)])
    assert not np.allclose(variable.numpy(), 1.0)
    assert np.isfinite(variable.numpy()).all()


def _reference_norm(x):
    return float(np.sqrt(np.sum(np.square(x))))


@pytest.mark.parametrize("classic", [True, False])
def test_lars_matches_the_formula_over_two_steps(classic):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype("float32")
    grads = [rng.normal(size=(4, 3)).astype("float32") for _ in range(2)]
    lr, momentum, eeta, wd = 0.5, 0.9, 0.01, 1e-3
    optimizer = LARS(
        lr, momentum=momentum, eeta=eeta, weight_decay_rate=wd, classic_momentum=classic
    )
    variable = keras.Variable(w0)
    w, v = w0.astype("float64"), np.zeros_like(w0, dtype="float64")
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
        g = g + wd * w
        if classic:
            ratio = eeta * _reference_norm(w) / _reference_norm(g)
            v = momentum * v + lr * ratio * g
            w = w - v
        else:
            v = momentum * v + g
            ratio = eeta * _reference_norm(w) / _reference_norm(v)
            w = w - lr * ratio * v
    np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5, atol=1e-6)


def test_lamb_matches_the_formula_and_honours_exclusions():
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(5,)).astype("float32")
    g = rng.normal(size=(5,)).astype("float32")
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-6, 0.1
    optimizer = LAMB(
        lr,
        beta_1=b1,
        beta_2=b2,
        epsilon=eps,
        weight_decay_rate=wd,
        exclude_from_weight_decay=["bias"],
    )
    kernel = keras.Variable(w0, name="kernel")
    bias = keras.Variable(w0, name="bias")
    optimizer.apply_gradients(
        [(keras.ops.convert_to_tensor(g), kernel), (keras.ops.convert_to_tensor(g), bias)]
    )
    m_hat = (1 - b1) * g / (1 - b1)
    v_hat = (1 - b2) * g**2 / (1 - b2)
    adam = m_hat / (np.sqrt(v_hat) + eps)

    def step(update):
        return w0 - _reference_norm(w0) / _reference_norm(update) * lr * update

    np.testing.assert_allclose(kernel.numpy(), step(adam + wd * w0), rtol=1e-5)
    # Excluded from decay, and (by default) from layer adaptation too.
    np.testing.assert_allclose(bias.numpy(), w0 - lr * adam, rtol=1e-5)


def test_adamw_decay_follows_include_and_exclude_patterns():
    config = _config(
        optimizer={
            "type": "adamw",
            "adamw": {
                "weight_decay_rate": 0.5,
                "exclude_from_weight_decay": ["bias", "norm"],
                "include_in_weight_decay": ["keep_norm"],
                "gradient_clip_norm": 0.0,
            },
        }
    )
    optimizer = build_optimizer(config)
    names = ["kernel", "bias", "layer_norm", "keep_norm"]
    variables = [keras.Variable(np.ones(2, "float32"), name=n) for n in names]
    optimizer.apply_gradients([(keras.ops.zeros(2), v) for v in variables])
    decayed = {n: bool(v.numpy()[0] < 1.0) for n, v in zip(names, variables, strict=True)}
    assert decayed == {"kernel": True, "bias": False, "layer_norm": False, "keep_norm": True}


def test_adamw_takes_model_garden_single_regex_with_tf_keras_names():
    # Model Garden's ViT recipes give one regex written for tf.keras names (`...:0`).
    config = _config(
        optimizer={
            "type": "adamw",
            "adamw": {
                "weight_decay_rate": 0.5,
                "include_in_weight_decay": r".*(kernel|weight):0$",
                "exclude_from_weight_decay": r".*",
                "gradient_clip_norm": 0.0,
            },
        }
    )
    optimizer = build_optimizer(config)
    names = ["kernel", "bias"]
    variables = [keras.Variable(np.ones(2, "float32"), name=n) for n in names]
    optimizer.apply_gradients([(keras.ops.zeros(2), v) for v in variables])
    decayed = {n: bool(v.numpy()[0] < 1.0) for n, v in zip(names, variables, strict=True)}
    assert decayed == {"kernel": True, "bias": False}


def test_adamw_gradient_clip_norm_becomes_global_clipnorm():
    optimizer = build_optimizer(_config(optimizer={"type": "adamw"}))
    assert optimizer.global_clipnorm == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, r"optimizer\.type` is not set: choose one of adafactor, .*lamb, lars, lion, rmsprop"),
        ({"optimizer": {"type": "sgd", "sgd": {"decay": 0.1}}}, "use a learning-rate schedule"),
        ({"optimizer": {"type": "adafactor", "adafactor": {"beta1": 0.9}}}, "no momentum"),
    ],
)
def test_settings_that_cannot_be_honoured_are_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_optimizer(_config(**overrides))


def test_custom_optimizers_serialize():
    for optimizer in (
        LARS(0.1, exclude_from_weight_decay=["bias"]),
        LAMB(0.01),
        AdamWeightDecay(learning_rate=0.01, exclude_from_weight_decay=["bias"]),
    ):
        restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
        assert type(restored) is type(optimizer)
        assert restored.get_config() == optimizer.get_config()


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_adam_with_the_fused_kernel_matches_keras_over_steps(kind):
    import tensorflow as tf

    options = {"adam": {}, "adamw": {"weight_decay_rate": 0.1, "gradient_clip_norm": 0.0}}
    fused = build_optimizer(_config(optimizer={"type": kind, kind: options[kind]}))
    if kind == "adam":
        reference = keras.optimizers.Adam(learning_rate=0.1)
    else:
        reference = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.1)
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4)).astype("float32")
    mine, theirs = keras.Variable(start), keras.Variable(start)
    embedding = keras.Variable(start)  # Updated from a sparse (IndexedSlices) gradient.
    reference_embedding = keras.Variable(start)
    for _ in range(4):
        gradient = rng.normal(size=(3, 4)).astype("float32")
        rows = tf.IndexedSlices(tf.constant(gradient[:2]), tf.constant([0, 2]), [3, 4])
        fused.apply_gradients([(tf.constant(gradient), mine), (rows, embedding)])
        reference.apply_gradients(
            [(tf.constant(gradient), theirs), (tf.convert_to_tensor(rows), reference_embedding)]
        )
    # The fused kernel orders the same float32 arithmetic differently.
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-5)
    np.testing.assert_allclose(embedding.numpy(), reference_embedding.numpy(), atol=1e-5)
    assert not np.allclose(mine.numpy(), start)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_the_fused_momentum_kernel_matches_keras_over_steps(nesterov):
    import tensorflow as tf

    config = _config(optimizer={"type": "sgd", "sgd": {"momentum": 0.9, "nesterov": nesterov}})
    fused, probe = build_optimizer(config), build_optimizer(config)
    variable = keras.Variable(np.zeros(4, "float32"))
    traced = tf.function(lambda: probe.apply_gradients([(tf.ones(4), variable)]))
    graph_ops = {op.type for op in traced.get_concrete_function().graph.get_operations()}
    assert "ResourceApplyKerasMomentum" in graph_ops
    reference = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
    rng = np.random.default_rng(1)
    start = rng.normal(size=(3, 4)).astype("float32")
    mine, theirs = keras.Variable(start), keras.Variable(start)
    embedding, reference_embedding = keras.Variable(start), keras.Variable(start)
    for _ in range(4):
        gradient = rng.normal(size=(3, 4)).astype("float32")
        rows = tf.IndexedSlices(tf.constant(gradient[:2]), tf.constant([0, 2]), [3, 4])
        fused.apply_gradients([(tf.constant(gradient), mine), (rows, embedding)])
        reference.apply_gradients([(tf.constant(gradient), theirs), (rows, reference_embedding)])
    # By hand for the dense weight: v = 0.9 v - 0.1 g; w += v (or w += 0.9 v - 0.1 g).
    rng = np.random.default_rng(1)
    weight, velocity = rng.normal(size=(3, 4)), np.zeros((3, 4))
    for _ in range(4):
        gradient = rng.normal(size=(3, 4)).astype("float32")
        velocity = 0.9 * velocity - 0.1 * gradient
        weight += 0.9 * velocity - 0.1 * gradient if nesterov else velocity
    np.testing.assert_allclose(mine.numpy(), weight, atol=1e-5)
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-6)
    np.testing.assert_allclose(embedding.numpy(), reference_embedding.numpy(), atol=1e-6)


# Runs in a fresh interpreter: logical devices must be configured before TF initialises.
_MIRRORED_FUSED = """
import keras
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from garden_core.config import OptimizationConfig
from garden_core.optimization import build_optimizer

config = OptimizationConfig()
config.override({"optimizer": {"type": "KIND", "sgd": {"momentum": 0.9}},
                 "learning_rate": {"type": "constant", "constant": {"learning_rate": 0.1}}})
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
start = np.arange(4, dtype="float32")
with strategy.scope():
    variable = keras.Variable(start)
    fused = build_optimizer(config)
    fused.build([variable])

@tf.function
def step():
    def replica_step():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        fused.apply_gradients([(tf.ones(4) * tf.cast(replica + 1, tf.float32), variable)])
    strategy.run(replica_step)

step()
reference = keras.Variable(start)
if "KIND" == "adam":
    keras.optimizers.Adam(learning_rate=0.1).apply_gradients([(tf.fill([4], 3.0), reference)])
else:
    keras.optimizers.SGD(learning_rate=0.1, momentum=0.9).apply_gradients(
        [(tf.fill([4], 3.0), reference)]
    )
assert not np.allclose(reference.numpy(), start)
for component in variable.value.values:
    np.testing.assert_allclose(component.numpy(), reference.numpy(), atol=1e-6)
print("replicas", len(variable.value.values))
"""


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_fused_optimizers_update_every_replica_under_mirrored_strategy(kind):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_FUSED.replace("KIND", kind)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
