"""Encoders and models through the registries: built-ins as entry points, plugins from a
distribution, both called the one way `garden_core.plugins` calls every builder.

The plugin tests write a tiny installed distribution under `tmp_path` and run a fresh
interpreter with it on `PYTHONPATH` (`garden_core.testing.plugins`), so the plugin is found
through its entry points exactly as a `pip install`ed one would be.
"""

from __future__ import annotations

import json
import math

import pytest
import tensorflow as tf

from garden_core import registry
from garden_core.config import ConfigError
from garden_core.testing.plugins import make_distribution, run_python
from garden_nlp.configs.encoders import EncoderConfig
from garden_nlp.modeling.encoders import build_encoder

TINY_BERT = {
    "vocab_size": 50,
    "hidden_size": 16,
    "num_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 24,
    "max_position_embeddings": 12,
    "type_vocab_size": 3,
}


def bert_parameter_count(v: int, h: int, layers: int, i: int, p: int, t: int) -> int:
    """BERT's parameter count (Devlin et al., 2018: embeddings, post-norm Transformer layers,
    tanh pooler), written out from the architecture."""
    embeddings = v * h + p * h + t * h + 2 * h  # Word, position, type; layer norm.
    attention = 4 * (h * h + h) + 2 * h  # Query, key, value, output; layer norm.
    feed_forward = (h * i + i) + (i * h + h) + 2 * h  # Two dense layers; layer norm.
    pooler = h * h + h
    return embeddings + layers * (attention + feed_forward) + pooler


def test_the_built_in_encoders_and_models_are_entry_points():
    for name in ("bert", "bert_v2", "albert"):
        assert registry.encoders.entry(name).distribution == "garden-nlp"
    models = ("bert_classifier", "bert_pretrainer", "bert_span_labeler", "bert_token_classifier")
    for name in models:
        entry = registry.models.entry(name)
        assert entry.distribution == "garden-nlp"
        assert entry.target.startswith("garden_nlp.modeling.models.builders:")


def test_a_built_in_encoder_from_the_registry_equals_build_encoder():
    direct = registry.encoders.get("bert")(**TINY_BERT)
    configured = build_encoder(EncoderConfig.from_dict({"type": "bert", "bert": TINY_BERT}))
    ids = tf.constant([[2, 7, 9, 3, 0]])
    inputs = {"input_word_ids": ids, "input_mask": tf.sign(ids), "input_type_ids": 0 * ids}
    direct(inputs), configured(inputs)
    expected = bert_parameter_count(v=50, h=16, layers=2, i=24, p=12, t=3)
    assert direct.count_params() == configured.count_params() == expected
    assert [tuple(w.shape) for w in direct.weights] == [tuple(w.shape) for w in configured.weights]


def test_a_task_model_from_the_registry_reports_bad_settings_with_their_path():
    from garden_core import plugins

    settings = {"encoder": EncoderConfig.from_dict({"type": "bert", "bert": TINY_BERT})}
    with pytest.raises(ConfigError, match="`task.model`.*num_classes"):
        plugins.build_named("models", "bert_classifier", settings, "task.model")
    bad = EncoderConfig.from_dict({"type": "bert", "bert": {**TINY_BERT, "num_layers": 0}})
    with pytest.raises(ConfigError, match="task.model.encoder.bert"):
        plugins.build_named(
            "models", "bert_classifier", {"encoder": bad, "num_classes": 2}, "task.model"
        )


PLUGIN_SOURCE = '''
"""A bag-of-embeddings encoder and a classifier model, registered as Garden plugins."""

import keras
import tensorflow as tf

from garden_core import plugins


class MeanBagEncoder(keras.layers.Layer):
    """Embeds the tokens; the pooled output is a dense tanh over their masked mean."""

    def __init__(self, vocab_size, hidden_size, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.embedding = keras.layers.Embedding(vocab_size, hidden_size, name="embedding")
        self.pooler = keras.layers.Dense(hidden_size, activation="tanh", name="pooler")

    def call(self, inputs, training=None):
        sequence = self.embedding(inputs["input_word_ids"])
        mask = tf.cast(inputs["input_mask"], sequence.dtype)[..., None]
        mean = tf.reduce_sum(sequence * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
        return {
            "sequence_output": sequence,
            "pooled_output": self.pooler(mean),
            "encoder_outputs": [sequence],
        }


CALLS = []


def build_mean_bag(vocab_size, hidden_size=8):
    CALLS.append({"vocab_size": vocab_size, "hidden_size": hidden_size})
    return MeanBagEncoder(vocab_size, hidden_size)


class PooledClassifier(keras.Model):
    def __init__(self, encoder, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.classifier = keras.layers.Dense(num_classes, name="classifier")

    def call(self, inputs, training=None):
        return self.classifier(self.encoder(inputs)["pooled_output"])

    @property
    def checkpoint_items(self):
        return {"encoder": self.encoder}


def build_pooled_classifier(encoder, num_classes):
    return PooledClassifier(
        plugins.build("encoders", encoder, "task.model.encoder"), num_classes
    )
'''

PLUGIN_RUN = """
import json, sys
import numpy as np
import tensorflow as tf

import acme_nlp
from garden_core import experiment_factory, plugins, registry, task_factory
from garden_core.config import ConfigError
from garden_nlp.configs.encoders import EncoderConfig
from garden_nlp.data import tfrecord_lib

report = {
    "encoders": registry.encoders.names(),
    "models": registry.models.names(),
    "distribution": registry.encoders.entry("mean_bag").distribution,
}

# A sentence-prediction experiment whose encoder is the plugin, from YAML-like settings.
ids = [2, 5, 6, 3, 0, 0, 0, 0]
records = [
    {"input_ids": ids, "input_mask": [1, 1, 1, 1, 0, 0, 0, 0], "segment_ids": [0] * 8,
     "label_ids": [n % 2]}
    for n in range(8)
]
tfrecord_lib.write_examples(sys.argv[1], records)
params = experiment_factory.get_experiment_config("bert/sentence_prediction")
params.override({
    "task": {
        "model": {
            "num_classes": 2,
            "use_encoder_pooler": True,
            "encoder": {"type": "mean_bag", "mean_bag": {"vocab_size": 10, "hidden_size": 6}},
        },
        "train_data": {"input_path": sys.argv[1], "seq_length": 8, "global_batch_size": 4},
    },
    "trainer": {"optimizer_config": {
        "optimizer": {"type": "sgd"},
        "learning_rate": {"type": "constant", "constant": {"learning_rate": 0.5}},
        "warmup": {"type": None},
    }},
})
params.validate()
task = task_factory.get_task(params.task)
model = task.build_model()
report["calls"] = list(acme_nlp.CALLS)
report["encoder_class"] = type(model.checkpoint_items["encoder"]).__name__
encoder = model.checkpoint_items["encoder"]
before = encoder.embedding.embeddings.numpy().copy()
optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
batch = next(iter(task.build_inputs(params.task.train_data)))
logs = task.train_step(batch, model, optimizer, metrics=task.build_metrics())
report["loss"] = float(logs[task.loss])
report["embeddings_moved"] = float(np.abs(encoder.embedding.embeddings.numpy() - before).max())

# The plugin model, built the way a task builds its model.
classifier = plugins.build_named(
    "models", "pooled_classifier",
    {"encoder": EncoderConfig.from_dict({"type": "mean_bag", "mean_bag": {"vocab_size": 10}}),
     "num_classes": 3},
    "task.model",
)
report["classifier_logits"] = list(classifier(batch[0]).shape)
report["all_calls"] = list(acme_nlp.CALLS)

# A setting the plugin's builder does not take is an error naming the path and the setting.
try:
    params.task.model.encoder.override({"mean_bag": {"width": 3}})
    task_factory.get_task(params.task).build_model()
except ConfigError as error:
    report["error"] = str(error)
print("REPORT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def plugin_report(tmp_path_factory):
    """Runs `PLUGIN_RUN` in a fresh interpreter with the plugin distribution installed."""
    root = make_distribution(
        tmp_path_factory.mktemp("site"),
        name="acme-nlp",
        module="acme_nlp",
        source=PLUGIN_SOURCE,
        entry_points={
            "garden.encoders": {"mean_bag": "acme_nlp:build_mean_bag"},
            "garden.models": {"pooled_classifier": "acme_nlp:build_pooled_classifier"},
        },
    )
    data = tmp_path_factory.mktemp("data") / "train.tfrecord"
    code = f"import sys; sys.argv = ['run', {str(data)!r}]\n" + PLUGIN_RUN
    result = run_python(root, code, CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, result.stderr[-3000:]
    line = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")][-1]
    return json.loads(line[len("REPORT ") :])


def test_a_plugin_encoder_is_listed_beside_the_built_ins(plugin_report):
    assert {"albert", "bert", "bert_v2", "mean_bag"} <= set(plugin_report["encoders"])
    assert {"bert_classifier", "pooled_classifier"} <= set(plugin_report["models"])
    assert plugin_report["distribution"] == "acme-nlp"


def test_a_sentence_prediction_task_trains_through_a_plugin_encoder(plugin_report):
    assert plugin_report["calls"][0] == {"vocab_size": 10, "hidden_size": 6}
    assert plugin_report["encoder_class"] == "MeanBagEncoder"
    assert math.isfinite(plugin_report["loss"])
    assert plugin_report["loss"] > 0
    assert plugin_report["embeddings_moved"] > 0


def test_a_plugin_model_builds_its_encoder_through_the_registry(plugin_report):
    assert plugin_report["classifier_logits"] == [4, 3]
    assert plugin_report["all_calls"][-1] == {"vocab_size": 10, "hidden_size": 8}


def test_a_setting_the_plugin_does_not_take_names_its_path(plugin_report):
    error = plugin_report["error"]
    assert "`task.model.encoder.mean_bag`" in error
    assert "width" in error
    print(error)
