"""Vision components from another distribution: a backbone, decoder, head and model plugin.

The plugin package is written under tmp_path as an installed distribution (metadata and
entry points) and used from a fresh interpreter, exactly as a research package installed
with pip would be; nothing is installed into the interpreter running the tests.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from garden_core import plugins, registry
from garden_core.config import ConfigError
from garden_core.testing.plugins import make_distribution, run_python
from garden_vision.modeling.heads.factory import build_head

PLUGIN = '''
"""A plugin distribution's vision components, written to Garden's builder contract."""

import dataclasses

import keras

from garden_core.config import Config
from garden_vision.configs.backbones import Backbone
from garden_vision.configs.common import NormActivation
from garden_vision.configs.decoders import Decoder
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.decoders.factory import build_decoder
from garden_vision.modeling.heads.factory import build_head


def _check_context(norm_activation_config, l2_regularizer):
    assert isinstance(norm_activation_config, NormActivation), norm_activation_config
    assert l2_regularizer is None or isinstance(l2_regularizer, keras.regularizers.Regularizer)


def build_acme_net(input_specs, norm_activation_config, l2_regularizer, width=4, stride=4):
    _check_context(norm_activation_config, l2_regularizer)
    inputs = keras.Input(shape=tuple(input_specs.shape[1:]))
    x = keras.layers.Conv2D(
        width, 3, strides=stride, padding="same", kernel_regularizer=l2_regularizer,
        name="acme_conv",
    )(inputs)
    x = keras.layers.Activation(norm_activation_config.activation)(x)
    model = keras.Model(inputs, {"2": x}, name="acme_net")
    model.output_specs = {"2": tuple(x.shape)}
    return model


class AcmeDecoder(keras.layers.Layer):
    def __init__(self, input_specs, num_filters, **kwargs):
        super().__init__(**kwargs)
        self.convs = {
            level: keras.layers.Conv2D(num_filters, 1, name=f"conv_{level}")
            for level in input_specs
        }
        self.output_specs = {
            level: (*shape[:-1], num_filters) for level, shape in input_specs.items()
        }

    def call(self, features):
        return {level: conv(features[level]) for level, conv in self.convs.items()}


def build_acme_decoder(
    input_specs, norm_activation_config, l2_regularizer, min_level, max_level, num_filters=8
):
    _check_context(norm_activation_config, l2_regularizer)
    # The segmenter's model config has no output levels.
    assert min_level is None and max_level is None, (min_level, max_level)
    return AcmeDecoder(input_specs, num_filters)


def build_acme_head(input_specs, num_classes, norm_activation_config, l2_regularizer, hidden=16):
    _check_context(norm_activation_config, l2_regularizer)
    assert len(input_specs) == 4, input_specs
    return keras.Sequential(
        [
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(num_classes),
        ],
        name="acme_head",
    )


@dataclasses.dataclass
class AcmeSegmenter(Config):
    num_classes: int = 2
    backbone: Backbone = dataclasses.field(default_factory=Backbone)
    decoder: Decoder = dataclasses.field(default_factory=Decoder)
    head: str = "acme_head"
    head_hidden: int = 16


def build_acme_segmenter(
    input_specs, l2_regularizer, num_classes, backbone, decoder, head, head_hidden
):
    """A model plugin: backbone, decoder and head all from their registries."""
    backbone_model = build_backbone(input_specs, backbone, NormActivation(), l2_regularizer)
    decoder_layer = build_decoder(backbone_model.output_specs, decoder, l2_regularizer)
    head_layer = build_head(
        head, "task.model.head", input_specs=decoder_layer.output_specs["2"],
        num_classes=num_classes, settings={"hidden": head_hidden},
    )
    inputs = keras.Input(shape=tuple(input_specs.shape[1:]))
    return keras.Model(inputs, head_layer(decoder_layer(backbone_model(inputs))["2"]))


# Settings arrive through this config: defaults, types and unknown keys checked.
build_acme_segmenter.config_class = AcmeSegmenter
'''

ENTRY_POINTS = {
    "garden.backbones": {"acme_net": "acme_vision:build_acme_net"},
    "garden.decoders": {"acme_decoder": "acme_vision:build_acme_decoder"},
    "garden.heads": {"acme_head": "acme_vision:build_acme_head"},
    "garden.models": {"acme_segmenter": "acme_vision:build_acme_segmenter"},
}

RUN = '''
import dataclasses, json

import keras
import numpy as np
import tensorflow as tf
import yaml

from garden_core import experiment_factory, plugins, registry, task_factory
from garden_core.config import Config, ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.configs.decoders import Decoder
from garden_vision.modeling.decoders.factory import build_decoder
from garden_vision.modeling.heads.factory import build_head

report = {
    kind: registry.registry(kind).names()
    for kind in ("backbones", "decoders", "heads", "models")
}

# 1. The task trains one step with the plugin backbone, set in YAML.
params = experiment_factory.get_experiment_config("image_classification")
params.override(yaml.safe_load("""
task:
  model:
    num_classes: 3
    input_size: [16, 16, 3]
    backbone: {type: acme_net, acme_net: {width: 6}}
  losses: {l2_weight_decay: 0.0001}
runtime: {distribution_strategy: one_device, num_gpus: 0}
"""))
params.validate()
task = task_factory.get_task(params.task)
model = task.build_model()
report["backbone_width"] = int(model.backbone.get_layer("acme_conv").filters)
report["backbone_losses"] = len(model.backbone.losses)
optimizer = keras.optimizers.SGD(0.1)
rng = np.random.default_rng(0)
images = rng.normal(size=(4, 16, 16, 3)).astype("float32")
labels = np.array([0, 1, 2, 1])
before = [w.numpy().copy() for w in model.backbone.trainable_weights]
logs = task.train_step(
    (tf.constant(images), tf.constant(labels)), model, optimizer, task.build_metrics()
)
report["loss"] = float(logs["loss"])
report["backbone_moved"] = any(
    not np.allclose(a, b.numpy()) for a, b in zip(before, model.backbone.trainable_weights)
)

# 2. A plugin decoder, chosen in a model config's `decoder` one-of, from YAML.
@dataclasses.dataclass
class SegmenterModel(Config):
    decoder: Decoder = dataclasses.field(default_factory=Decoder)
    norm_activation: NormActivation = dataclasses.field(default_factory=NormActivation)

config = SegmenterModel.from_dict(
    yaml.safe_load("decoder: {type: acme_decoder, acme_decoder: {num_filters: 5}}")
)
decoder = build_decoder(model.backbone.output_specs, config, None)
features = decoder(model.backbone(images))
report["decoder_shape"] = list(features["2"].shape)
report["decoder_specs"] = {k: list(v) for k, v in decoder.output_specs.items()}

# 3. A plugin head by name, with settings from YAML.
head = build_head(
    "acme_head", "task.model.head", input_specs=(None, 4, 4, 5), num_classes=3,
    settings=yaml.safe_load("hidden: 7"),
)
report["head_shape"] = list(head(features["2"]).shape)
report["head_hidden"] = int(head.layers[1].units)

# 4. A plugin model builder composing all three through their registries.
segmenter = plugins.build_named(
    "models", "acme_segmenter",
    yaml.safe_load("""
num_classes: 2
backbone: {type: acme_net, acme_net: {width: 3, stride: 2}}
decoder: {type: acme_decoder}
head_hidden: 4
"""),
    "task.model",
    input_specs=keras.layers.InputSpec(shape=[None, 16, 16, 3]),
    l2_regularizer=None,
)
report["model_shape"] = list(segmenter(images).shape)

# 5. A misspelt setting is an error naming the path, the settings and the context.
params.override({"task": {"model": {"backbone": {"acme_net": {"widht": 6}}}}})
try:
    task_factory.get_task(params.task).build_model()
except ConfigError as error:
    report["error"] = str(error)
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def plugin_report(tmp_path_factory):
    root = make_distribution(
        tmp_path_factory.mktemp("acme"), "acme-vision", "acme_vision", PLUGIN, ENTRY_POINTS
    )
    result = run_python(root, RUN, CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT ") :])


def test_plugins_are_listed_beside_the_built_in_components(plugin_report):
    assert {"acme_net", "resnet", "vit"} <= set(plugin_report["backbones"])
    assert {"acme_decoder", "identity"} <= set(plugin_report["decoders"])
    assert {"acme_head", "classification"} <= set(plugin_report["heads"])
    assert {"acme_segmenter", "image_classification"} <= set(plugin_report["models"])


def test_the_task_trains_a_step_with_a_plugin_backbone(plugin_report):
    assert plugin_report["backbone_width"] == 6  # The YAML setting arrived as a keyword.
    assert plugin_report["backbone_losses"] == 1  # The task's L2 reached the plugin.
    assert np.isfinite(plugin_report["loss"])
    assert plugin_report["backbone_moved"]


def test_a_plugin_decoder_and_head_are_built_from_yaml_settings(plugin_report):
    assert plugin_report["decoder_shape"] == [4, 4, 4, 5]
    assert plugin_report["decoder_specs"] == {"2": [None, 4, 4, 5]}
    assert plugin_report["head_shape"] == [4, 3]
    assert plugin_report["head_hidden"] == 7
    assert plugin_report["model_shape"] == [4, 2]


def test_a_misspelt_plugin_setting_names_the_path_and_the_context(plugin_report):
    message = plugin_report["error"]
    assert "task.model.backbone.acme_net" in message
    assert "widht" in message
    assert "input_specs, l2_regularizer, norm_activation_config" in message


def test_a_head_registered_in_process_is_built_like_an_installed_one():
    def build_twice(input_specs, num_classes, norm_activation_config, l2_regularizer, scale=2):
        return keras.layers.Lambda(lambda x: scale * x[..., :num_classes])

    registry.heads.register("twice", build_twice)
    try:
        head = build_head(
            "twice", "task.model.head", input_specs=(None, 5), num_classes=3, settings={"scale": 3}
        )
        features = np.arange(10, dtype="float32").reshape(2, 5)
        np.testing.assert_allclose(head(features), 3 * features[:, :3])
        with pytest.raises(ConfigError, match="cannot be set in the config"):
            build_head(
                "twice",
                "task.model.head",
                input_specs=(None, 5),
                num_classes=3,
                settings={"num_classes": 4},
            )
    finally:
        registry.heads.unregister("twice")


def test_builders_that_return_the_wrong_kind_of_object_are_named():
    registry.heads.register("not_a_layer", lambda **kwargs: {"dense": 3})
    try:
        with pytest.raises(ConfigError, match="not_a_layer.*not a Keras layer"):
            build_head("not_a_layer", "task.model.head", input_specs=(None, 5), num_classes=3)
    finally:
        registry.heads.unregister("not_a_layer")
    assert plugins.load("heads", "classification", "here")[0].__name__ == (
        "build_classification_head"
    )
