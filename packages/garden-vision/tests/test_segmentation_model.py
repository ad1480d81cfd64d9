"""`SegmentationModel` and `factory.build_segmentation_model`: DeepLab models end to end.

The tests build through the `garden.backbones`, `garden.decoders`, `garden.heads` and
`garden.models` registries. Until garden-vision's entry points for `dilated_resnet`,
`aspp`, `segmentation` and `semantic_segmentation` are installed, the `registered` fixture
registers those builders in process; once installed, the entry points are used.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core import plugins
from garden_core import registry as registry_lib
from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.configs import semantic_segmentation as segmentation_configs
from garden_vision.configs.semantic_segmentation import SemanticSegmentationModel
from garden_vision.modeling import factory
from garden_vision.modeling.backbones.resnet_deeplab import DilatedResNet, build_dilated_resnet
from garden_vision.modeling.decoders.aspp import ASPP, build_aspp
from garden_vision.modeling.heads.segmentation_heads import (
    SegmentationHead,
    build_segmentation_head,
)
from garden_vision.modeling.segmentation_model import SegmentationModel

NUM_CLASSES = 4
ANY_SIZE = keras.layers.InputSpec(shape=[None, None, None, 3])

BUILDERS = {
    ("backbones", "dilated_resnet"): build_dilated_resnet,
    ("decoders", "aspp"): build_aspp,
    ("heads", "segmentation"): build_segmentation_head,
    ("models", "semantic_segmentation"): factory.build_semantic_segmentation_model,
}


@pytest.fixture(autouse=True)
def registered():
    """The segmentation builders in their registries (in process where not installed)."""
    added = []
    for (kind, name), builder in BUILDERS.items():
        registry = registry_lib.registry(kind)
        if name not in registry:
            registry.register(name, builder)
            added.append((registry, name))
    yield
    for registry, name in added:
        registry.unregister(name)


def tiny_config(**changes) -> SemanticSegmentationModel:
    """A small DeepLabV3+: quarter-width ResNet-18, ASPP on its last level (5, so that every
    weight is used), fusion with level 2."""
    config = SemanticSegmentationModel.from_dict(
        {
            "num_classes": NUM_CLASSES,
            "input_size": [None, None, 3],
            "backbone": {"type": "resnet", "resnet": {"model_id": 18, "depth_multiplier": 0.25}},
            "decoder": {
                "type": "aspp",
                "aspp": {"level": 5, "dilation_rates": [1, 2], "num_filters": 16},
            },
            "head": {
                "level": 5,
                "num_convs": 1,
                "num_filters": 16,
                "feature_fusion": "deeplabv3plus",
                "low_level": 2,
                "low_level_num_filters": 8,
            },
            "norm_activation": {"use_sync_bn": False},
        }
    )
    config.override(changes)
    return config


def images(batch=2, size=64, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)).astype("float32")


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_logits_at_the_heads_resolution():
    model = factory.build_segmentation_model(ANY_SIZE, tiny_config())
    assert isinstance(model.backbone, keras.Model)
    assert isinstance(model.decoder, ASPP)
    assert isinstance(model.head, SegmentationHead)
    outputs = model(images(), training=False)
    assert list(outputs) == ["logits"]
    assert tuple(outputs["logits"].shape) == (2, 16, 16, NUM_CLASSES)  # DeepLabV3+: stride 4.
    deeplabv3 = factory.build_segmentation_model(
        ANY_SIZE, tiny_config(head={"feature_fusion": None, "num_convs": 0})
    )
    assert tuple(deeplabv3(images())["logits"].shape) == (2, 2, 2, NUM_CLASSES)  # Stride 32.
    assert model.checkpoint_items.keys() == {"backbone", "decoder", "head"}


def test_any_image_size_in_a_tf_function():
    model = factory.build_segmentation_model(ANY_SIZE, tiny_config())

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def run(x):
        return model(x, training=False)["logits"]

    for size in (32, 48):
        logits = run(images(batch=1, size=size))
        assert tuple(logits.shape) == (1, size // 4, size // 4, NUM_CLASSES)
        np.testing.assert_allclose(logits, model(images(1, size))["logits"], atol=1e-5)


def test_shared_checks_config_checkpoint_keras_file_and_train_step(tmp_path):
    model = factory.build_segmentation_model(
        keras.layers.InputSpec(shape=[None, 32, 32, 3]), tiny_config()
    )
    batch = images(batch=1, size=32)
    rebuilt = SegmentationModel.from_config(model.get_config())
    rebuilt(batch)
    assert model_checks.count_params(rebuilt) == model_checks.count_params(model)
    model_checks.check_checkpoint_round_trip(model, rebuilt, batch, tmp_path)
    model_checks.check_keras_file_round_trip(model, batch, tmp_path)
    model_checks.check_train_step(model, batch)


def test_mixed_precision_computes_in_bfloat16_with_float32_logits():
    def make():
        return factory.build_segmentation_model(ANY_SIZE, tiny_config())

    outputs = model_checks.check_mixed_precision(
        make, images(batch=1, size=32), policy="mixed_bfloat16", float32_outputs={"logits"}
    )
    assert outputs["logits"].shape == (1, 8, 8, NUM_CLASSES)


def test_the_registered_builder_with_weight_decay_and_a_few_training_steps():
    model = plugins.build_named(
        "models",
        "semantic_segmentation",
        tiny_config(),
        "task.model",
        input_specs=keras.layers.InputSpec(shape=[None, 32, 32, 3]),
        l2_regularizer=keras.regularizers.L2(1e-5),
    )
    assert isinstance(model, SegmentationModel)
    assert model.losses  # Weight decay reaches the kernels.
    batch = images(batch=2, size=32, seed=3)
    # Left half class 1, right half class 3, at the logits' resolution.
    labels = np.ones((2, 8, 8), np.int32)
    labels[:, :, 4:] = 3
    optimizer = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    history = []
    for _ in range(5):
        with tf.GradientTape() as tape:
            logits = model(batch, training=True)["logits"]
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
            loss += tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        assert all(grad is not None for grad in grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        history.append(float(loss))
    assert all(np.isfinite(history))
    assert history[-1] < history[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"head": {"level": 3}}, r"`task.model.head.level` is 3.*decoder.*\['5'\]"),
        (
            {"head": {"low_level": "2/depthwise"}},
            r"`task.model.head.low_level` is '2/depthwise'.*\['2', '3', '4', '5'\]",
        ),
        (
            {"decoder": {"type": None}, "head": {"feature_fusion": None, "level": 6}},
            r"`task.model.head.level` is 6.*backbone.*\['2', '3', '4', '5'\]",
        ),
        (
            {"decoder": {"aspp": {"level": 6}}, "head": {"level": 6}},
            r"level.*6.*\['2', '3', '4', '5'\]",
        ),
    ],
)
def test_a_level_that_is_no_endpoint_is_a_clear_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        factory.build_segmentation_model(ANY_SIZE, tiny_config(**changes))


def test_mobilenet_deeplabv3plus_fuses_the_depthwise_endpoint():
    config = segmentation_configs.mnv2_deeplabv3plus_cityscapes().task.model
    config.decoder.aspp.pool_kernel_size = None  # Global pooling, for a small image.
    model = factory.build_segmentation_model(ANY_SIZE, config)
    assert "2/depthwise" in model.backbone.output_specs
    logits = model(images(batch=1, size=64), training=False)["logits"]
    assert tuple(logits.shape) == (1, 16, 16, 19)


# Trainable parameters of tf-models-official 2.20's own models for the same experiments,
# counted with its `modeling.factory.build_segmentation_model` on its own experiment
# configs (`exp_factory.get_exp_config(name).task.model`, built on `input_size`).
@pytest.mark.parametrize(
    ("experiment", "exact"),
    [
        ("seg_deeplabv3_pascal", 58_164_437),
        ("seg_deeplabv3plus_pascal", 59_468_085),
        ("seg_resnetfpn_pascal", 29_155_669),
        ("mnv2_deeplabv3_pascal", 2_525_717),
        ("mnv2_deeplabv3plus_cityscapes", 2_682_755),
    ],
)
def test_parameter_counts_match_model_garden(experiment, exact):
    config = getattr(segmentation_configs, experiment)().task.model
    specs = keras.layers.InputSpec(shape=[None, *config.input_size])
    model = factory.build_segmentation_model(specs, config)
    if config.backbone.type == "dilated_resnet":
        assert isinstance(model.backbone, DilatedResNet)
    assert trainable(model) == exact
