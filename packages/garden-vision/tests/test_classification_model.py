"""`ClassificationHead`, `ClassificationModel` and the classification model factory."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_core import plugins
from garden_vision.configs import backbones as backbone_configs
from garden_vision.configs.image_classification import ImageClassificationModel
from garden_vision.modeling.backbones.resnet import ResNet
from garden_vision.modeling.classification_model import ClassificationModel
from garden_vision.modeling.factory import build_classification_model
from garden_vision.modeling.heads import ClassificationHead

TINY_VIT = {
    "model_name": "vit-custom",
    "hidden_size": 8,
    "patch_size": 8,
    "transformer": {"mlp_dim": 8, "num_heads": 2, "num_layers": 1},
    "add_distillation_token": True,
}


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _config(backbone: dict, **fields) -> ImageClassificationModel:
    return ImageClassificationModel.from_dict(
        {"num_classes": 3, "input_size": [16, 16, 3], "backbone": backbone, **fields}
    )


@pytest.mark.parametrize("rank", [2, 3, 4])
def test_the_head_pools_and_projects_like_numpy(rank):
    rng = np.random.default_rng(rank)
    shape = {2: (2, 4), 3: (2, 5, 4), 4: (2, 3, 3, 4)}[rank]
    features = rng.normal(size=shape).astype("float32")
    head = ClassificationHead(num_classes=3, add_head_batch_norm=True, norm_epsilon=1e-3)
    head.build(shape)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    head.dense.set_weights([kernel, bias])
    # Batch norm at inference with fresh statistics (mean 0, variance 1).
    normalized = features / np.sqrt(1 + 1e-3)
    pooled = normalized.reshape(2, -1, 4).mean(axis=1)
    logits = pooled @ kernel + bias
    np.testing.assert_allclose(head(features, training=False), logits, rtol=1e-5, atol=1e-5)

    probabilities = ClassificationHead(num_classes=3, output_softmax=True)
    probabilities.build(shape)
    probabilities.dense.set_weights([kernel, bias])
    expected = _softmax(features.reshape(2, -1, 4).mean(axis=1) @ kernel + bias)
    np.testing.assert_allclose(probabilities(features), expected, rtol=1e-5, atol=1e-6)

    skipped = ClassificationHead(num_classes=3, skip_logits_layer=True)
    np.testing.assert_allclose(
        skipped(features), features.reshape(2, -1, 4).mean(axis=1), rtol=1e-5, atol=1e-6
    )


def test_the_factory_builds_the_head_through_the_registry_and_the_model_round_trips(tmp_path):
    config = _config(
        {"type": "resnet", "resnet": {"model_id": 10, "depth_multiplier": 0.25}},
        dropout_rate=0.1,
        add_head_batch_norm=True,
    )
    specs = keras.layers.InputSpec(shape=[None, 16, 16, 3])
    model = plugins.build_named(
        "models",
        "image_classification",
        config,
        "task.model",
        input_specs=specs,
        l2_regularizer=keras.regularizers.L2(1e-4),
    )
    assert isinstance(model, ClassificationModel)
    assert isinstance(model.head, ClassificationHead)
    assert model.head.dropout_rate == 0.1
    assert model.head.norm is not None
    assert model.head.kernel_regularizer is not None
    images = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    expected = model(images, training=False)
    assert expected.shape == (2, 3)
    assert expected.dtype == "float32"

    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.head, ClassificationHead)
    np.testing.assert_allclose(restored(images, training=False), expected, atol=1e-5)

    # Checkpoints name the parts.
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    names = [name for name, _ in tf.train.list_variables(prefix)]
    assert any(name.startswith("model/head/dense/") for name in names)
    assert any(name.startswith("model/backbone/") for name in names)
    again = build_classification_model(specs, config, keras.regularizers.L2(1e-4))
    tf.train.Checkpoint(model=again).read(prefix).assert_existing_objects_matched()
    np.testing.assert_allclose(again(images, training=False), expected, atol=1e-5)


def test_deit_gets_a_distillation_head_from_the_registry_too():
    model = build_classification_model(
        keras.layers.InputSpec(shape=[None, 16, 16, 3]),
        _config({"type": "vit", "vit": TINY_VIT}, output_softmax=True),
    )
    assert isinstance(model.distillation_head, ClassificationHead)
    assert model.distillation_head is not model.head
    images = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
    training = model(images, training=True)
    assert set(training) == {"logits", "distill_logits"}
    for probabilities in training.values():  # `output_softmax`: both heads emit probabilities.
        np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, atol=1e-5)
    inference = model(images, training=False)
    np.testing.assert_allclose(np.sum(inference, axis=-1), 1.0, atol=1e-5)


def test_skip_logits_layer_returns_the_pooled_features():
    backbone = ResNet(10, input_specs=[None, 16, 16, 3], depth_multiplier=0.25)
    model = build_classification_model(
        keras.layers.InputSpec(shape=[None, 16, 16, 3]),
        _config({"type": "resnet"}),
        skip_logits_layer=True,
        backbone=backbone,
    )
    images = np.zeros((2, 16, 16, 3), "float32")
    top = backbone(images, training=False)["5"]
    np.testing.assert_allclose(model(images, training=False), np.mean(top, axis=(1, 2)), atol=1e-6)


def test_a_backbone_without_levels_is_a_config_error():
    inputs = keras.Input((16, 16, 3))
    backbone = keras.Model(inputs, {"features": keras.layers.Conv2D(2, 3)(inputs)})
    with pytest.raises(Exception, match="pre_logits"):
        build_classification_model(
            keras.layers.InputSpec(shape=[None, 16, 16, 3]),
            _config(backbone_configs.Backbone(type="resnet").as_dict()),
            backbone=backbone,
        )
