"""Tests of the encoder configs and `build_encoder` of the built-in encoders: Model Garden's
fields, YAML, the settings checks (plugin encoders: test_nlp_plugins.py)."""

from __future__ import annotations

import dataclasses
import textwrap

import keras
import pytest
import yaml

from garden_core.config import ConfigError, override_config
from garden_nlp.configs.encoders import AlbertEncoderConfig, BertEncoderConfig, EncoderConfig
from garden_nlp.modeling.encoders import build_albert_encoder, build_bert_encoder, build_encoder
from garden_nlp.modeling.networks import AlbertEncoder, BertEncoder
from garden_nlp.testing import make_encoder_inputs

TINY_BERT = {
    "vocab_size": 100,
    "hidden_size": 16,
    "num_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 16,
}


def test_defaults_are_model_gardens():
    bert = {f.name: f.default for f in dataclasses.fields(BertEncoderConfig)}
    assert bert == {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_layers": 12,
        "num_attention_heads": 12,
        "hidden_activation": "gelu",
        "intermediate_size": 3072,
        "dropout_rate": 0.1,
        "attention_dropout_rate": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "embedding_size": None,
        "output_range": None,
        "return_all_encoder_outputs": False,
        "return_attention_scores": False,
        "norm_first": False,
    }
    albert = AlbertEncoderConfig()
    assert (albert.vocab_size, albert.embedding_width, albert.hidden_size) == (30000, 128, 768)
    assert (albert.dropout_rate, albert.attention_dropout_rate) == (0.0, 0.0)
    assert EncoderConfig().type == "bert"
    assert set(EncoderConfig.branches()) == {"albert", "bert", "bert_v2"}


def test_yaml_round_trip_and_overrides(tmp_path):
    config = EncoderConfig()
    override_config(
        config, params_override="type=albert,albert.num_layers=3,albert.embedding_width=64"
    )
    config.override({"bert": {"hidden_size": 256}})
    text = config.as_yaml()
    assert yaml.safe_load(text)["type"] == "albert"
    (tmp_path / "encoder.yaml").write_text(text)
    restored = EncoderConfig.from_yaml(str(tmp_path / "encoder.yaml"))
    assert restored == config
    assert (restored.albert.num_layers, restored.albert.embedding_width) == (3, 64)
    assert restored.bert.hidden_size == 256


def test_a_model_garden_encoder_yaml_loads_as_is(tmp_path):
    text = """
    type: bert
    bert:
      hidden_size: 768
      num_layers: 12
      norm_first: false
    xlnet:
      num_layers: 24
    """
    (tmp_path / "encoder.yaml").write_text(textwrap.dedent(text))
    config = EncoderConfig.from_yaml(str(tmp_path / "encoder.yaml"))
    assert config.type == "bert"
    assert config.get() is config.bert


def test_unknown_and_unsupported_types_are_errors():
    with pytest.raises(ConfigError, match="did you mean `bert`"):
        EncoderConfig.from_dict({"type": "bertt"})
    with pytest.raises(ConfigError, match="does not support"):
        EncoderConfig().override({"type": "xlnet"})
    with pytest.raises(ConfigError, match="num_layer"):
        EncoderConfig().override({"bert": {"num_layer": 2}})


def test_build_encoder_builds_the_built_in_types():
    config = EncoderConfig.from_dict({"type": "bert", "bert": TINY_BERT})
    encoder = build_encoder(config)
    assert isinstance(encoder, BertEncoder)
    assert (encoder.hidden_size, encoder.num_layers, encoder.inner_dim) == (16, 2, 32)
    assert encoder.type_vocab_size == 2
    assert encoder.max_sequence_length == 16
    assert keras.initializers.get(encoder.initializer).stddev == 0.02
    outputs = encoder(make_encoder_inputs(vocab_size=100))
    assert tuple(outputs["pooled_output"].shape) == (2, 16)

    assert isinstance(
        build_encoder(EncoderConfig(type="bert_v2", bert_v2=config.bert)), BertEncoder
    )
    albert = build_encoder(
        EncoderConfig.from_dict({"type": "albert", "albert": {**TINY_BERT, "embedding_width": 8}})
    )
    assert isinstance(albert, AlbertEncoder)
    assert albert.dict_outputs
    assert isinstance(build_bert_encoder(**TINY_BERT), BertEncoder)
    assert isinstance(build_albert_encoder(**TINY_BERT), AlbertEncoder)


def test_build_encoder_names_bad_settings():
    with pytest.raises(ConfigError, match="`encoder.type` is not set: choose one of .*albert"):
        build_encoder(EncoderConfig(type=None))
    bad = EncoderConfig.from_dict({"type": "bert", "bert": {**TINY_BERT, "num_layers": 0}})
    with pytest.raises(ConfigError, match="num_layers > 0.*encoder.bert"):
        build_encoder(bad)
    bad = EncoderConfig.from_dict(
        {"type": "bert", "bert": {**TINY_BERT, "hidden_activation": "gelo"}}
    )
    with pytest.raises(ConfigError, match="`task.model.encoder.bert.hidden_activation` is 'gelo'"):
        build_encoder(bad, where="task.model.encoder")
    bad = EncoderConfig.from_dict({"type": "albert", "albert": {"hidden_activation": "relx"}})
    with pytest.raises(ConfigError, match="`encoder.albert.hidden_activation` is 'relx'"):
        build_encoder(bad)


def test_the_built_in_builders_check_direct_calls():
    with pytest.raises(ConfigError, match="unknown key `num_layer`"):
        build_bert_encoder(num_layer=2)
    with pytest.raises(ValueError, match="`hidden_activation` is 'gelo'"):
        build_bert_encoder(**{**TINY_BERT, "hidden_activation": "gelo"})
    with pytest.raises(ConfigError, match="num_attention_heads > 0"):
        build_albert_encoder(num_attention_heads=0)


def test_a_shared_embedding_layer_reaches_bert_and_albert_refuses_it():
    bert = build_encoder(EncoderConfig.from_dict({"type": "bert", "bert": TINY_BERT}))
    table = bert.word_embeddings
    shared = build_encoder(
        EncoderConfig.from_dict({"type": "bert", "bert": TINY_BERT}), embedding_layer=table
    )
    assert shared.word_embeddings is table
    albert = EncoderConfig.from_dict({"type": "albert", "albert": TINY_BERT})
    with pytest.raises(ConfigError, match="`encoder.albert`.*cannot share an embedding layer"):
        build_encoder(albert, embedding_layer=table)


def test_the_configs_load_neither_tensorflow_nor_keras(import_probe):
    modules_after_import, modules_of, _ = import_probe
    loaded = modules_after_import("garden_nlp.configs.encoders")
    assert "garden_nlp.configs.encoders" in loaded
    assert modules_of(loaded, "tensorflow", "keras", "tf_keras") == []
