"""Tests of `EncoderScaffold`: BERT parity, custom embedding and layer classes, its options."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_nlp.modeling.layers import TransformerEncoderBlock
from garden_nlp.modeling.models import BertClassifier
from garden_nlp.modeling.networks import BertEncoder, EncoderScaffold
from garden_nlp.testing import count_params, make_encoder_inputs, run_model_test

INPUTS = make_encoder_inputs(batch_size=2, seq_length=8, vocab_size=50)
INIT = keras.initializers.TruncatedNormal(stddev=0.02)
EMBEDDING_CFG = {
    "vocab_size": 50,
    "type_vocab_size": 2,
    "hidden_size": 16,
    "max_seq_length": 16,
    "initializer": INIT,
    "dropout_rate": 0.1,
}
# Model Garden's `layers.Transformer` names, as its `build_encoder` passes them.
LEGACY_HIDDEN_CFG = {
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "intermediate_activation": "gelu",
    "dropout_rate": 0.1,
    "attention_dropout_rate": 0.1,
    "kernel_initializer": INIT,
}


@keras.saving.register_keras_serializable(package="garden_nlp_tests")
class ScaledBlock(keras.layers.Layer):
    """A toy hidden layer: `x + (layer_idx + 1) * tanh(Dense(x))`, masked to real tokens."""

    def __init__(self, width, layer_idx=0, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.layer_idx = layer_idx
        self.dense = keras.layers.Dense(width)

    def build(self, input_shape):
        self.dense.build(input_shape[0])

    def call(self, inputs):
        data, attention_mask = inputs[0], inputs[1]
        keep = tf.cast(attention_mask[:, 0, :, None], data.dtype)  # [batch, seq, 1]
        return data + float(self.layer_idx + 1) * tf.tanh(self.dense(data)) * keep

    def get_config(self):
        return {**super().get_config(), "width": self.width, "layer_idx": self.layer_idx}


@keras.saving.register_keras_serializable(package="garden_nlp_tests")
class CountingBlock(keras.layers.Layer):
    """A recursive toy layer: passes on `state + 1` and adds the count to its input."""

    def call(self, inputs):
        data, _, state = inputs
        state = tf.zeros([], data.dtype) if state is None else state
        return data + state, state + 1.0


@keras.saving.register_keras_serializable(package="garden_nlp_tests")
class SumEmbedding(keras.layers.Layer):
    """A toy embedding: word embedding only, and a mask from `input_mask`."""

    def __init__(self, vocab_size, width, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.width = width
        self.embedding = keras.layers.Embedding(vocab_size, width)

    def build(self, input_shape):
        self.embedding.build(input_shape["input_word_ids"])

    def call(self, inputs):
        embeddings = self.embedding(inputs["input_word_ids"])
        mask = tf.cast(inputs["input_mask"], embeddings.dtype)
        return embeddings, tf.ones_like(mask)[:, :, None] * mask[:, None, :]

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "width": self.width}


def _np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _bert_scaffold(**kwargs) -> EncoderScaffold:
    settings = {
        "pooled_output_dim": 16,
        "embedding_cfg": EMBEDDING_CFG,
        "hidden_cfg": LEGACY_HIDDEN_CFG,
        "num_hidden_instances": 2,
        "dict_outputs": True,
    }
    return EncoderScaffold(**{**settings, **kwargs})


def test_default_parts_compute_bert(tmp_path):
    scaffold = run_model_test(
        _bert_scaffold,
        INPUTS,
        {
            "sequence_output": (2, 8, 16),
            "pooled_output": (2, 16),
            "encoder_outputs": [(2, 8, 16)] * 2,
        },
        tmp_path,
    )
    bert = BertEncoder(
        vocab_size=50,
        hidden_size=16,
        num_layers=2,
        num_attention_heads=2,
        inner_dim=32,
        max_sequence_length=16,
        type_vocab_size=2,
    )
    bert(INPUTS)
    for name in ("word_embeddings", "position_embedding", "type_embeddings", "embedding_norm"):
        getattr(scaffold, name).set_weights(getattr(bert, name).get_weights())
    for mine, theirs in zip(scaffold.hidden_layers, bert.transformer_layers, strict=True):
        assert isinstance(mine, TransformerEncoderBlock)
        assert mine.inner_dim == 32
        assert mine.output_dropout == 0.1
        mine.set_weights(theirs.get_weights())
    scaffold.pooler_layer.set_weights(bert.pooler_layer.get_weights())
    expected, actual = bert(INPUTS), scaffold(INPUTS)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(_np(actual[key]), _np(expected[key]), atol=1e-5)
    assert scaffold.hidden_size == 16
    assert scaffold.get_embedding_table() is scaffold.word_embeddings.embeddings


def test_custom_embedding_and_layer_classes_plug_in(tmp_path):
    def make():
        return EncoderScaffold(
            pooled_output_dim=6,
            embedding_cls=SumEmbedding,
            embedding_cfg={"vocab_size": 50, "width": 12},
            hidden_cls=ScaledBlock,
            hidden_cfg={"width": 12},
            num_hidden_instances=3,
            feed_layer_idx=True,
            dict_outputs=True,
        )

    scaffold = run_model_test(
        make,
        INPUTS,
        {
            "sequence_output": (2, 8, 12),
            "pooled_output": (2, 6),
            "encoder_outputs": [(2, 8, 12)] * 3,
        },
        tmp_path,
    )
    assert isinstance(scaffold.embedding_network, SumEmbedding)
    assert [layer.layer_idx for layer in scaffold.hidden_layers] == [0, 1, 2]
    assert scaffold.word_embeddings is None
    assert scaffold.hidden_size == 12
    with pytest.raises(ValueError, match="embedding_data"):
        scaffold.get_embedding_table()
    table = scaffold.embedding_network.embedding.embeddings
    with_data = EncoderScaffold(
        pooled_output_dim=6,
        embedding_cls=scaffold.embedding_network,
        embedding_data=table,
        hidden_cls=ScaledBlock(12),
    )
    assert with_data.get_embedding_table() is table


@keras.saving.register_keras_serializable(package="garden_nlp_tests")
class SeededBlock(ScaledBlock):
    """`ScaledBlock` with an attention config, as BigBird's and kernel attention's take."""

    def __init__(self, width, attention_cfg=None, **kwargs):
        super().__init__(width, **kwargs)
        self.attention_cfg = dict(attention_cfg or {})

    def get_config(self):
        return {**super().get_config(), "attention_cfg": self.attention_cfg}


def test_layer_index_as_attention_seed():
    scaffold = _bert_scaffold(
        hidden_cls=SeededBlock,
        hidden_cfg={"width": 16, "attention_cfg": {"seed": 99, "num_heads": 2}},
        num_hidden_instances=3,
        layer_idx_as_attention_seed=True,
    )
    seeds = [layer.attention_cfg["seed"] for layer in scaffold.hidden_layers]
    assert seeds == [0, 1, 2]
    assert scaffold.get_config()["hidden_cfg"]["attention_cfg"]["seed"] == 99


def test_a_layer_instance_is_shared_across_depth():
    shared = ScaledBlock(16)
    scaffold = _bert_scaffold(hidden_cls=shared, hidden_cfg=None)
    scaffold(INPUTS)
    single = _bert_scaffold(hidden_cls=ScaledBlock(16), hidden_cfg=None, num_hidden_instances=1)
    single(INPUTS)
    assert scaffold.hidden_layers == [shared, shared]
    assert count_params(scaffold) == count_params(single)
    rebuilt = EncoderScaffold.from_config(scaffold.get_config())
    rebuilt(INPUTS)
    assert rebuilt.hidden_layers[0] is rebuilt.hidden_layers[1]


def test_a_list_of_layer_classes_and_instances():
    instance = ScaledBlock(16, layer_idx=5)
    scaffold = _bert_scaffold(hidden_cls=[TransformerEncoderBlock, instance])
    scaffold(INPUTS)
    assert isinstance(scaffold.hidden_layers[0], TransformerEncoderBlock)
    assert scaffold.hidden_layers[1] is instance
    with pytest.raises(ValueError, match="lists 1 layers"):
        _bert_scaffold(hidden_cls=[TransformerEncoderBlock])


def test_list_outputs_and_layer_norm_before_pooling():
    sequence, pooled = _bert_scaffold(dict_outputs=False)(INPUTS)
    assert (tuple(sequence.shape), tuple(pooled.shape)) == ((2, 8, 16), (2, 16))
    all_layers, _ = _bert_scaffold(dict_outputs=False, return_all_layer_outputs=True)(INPUTS)
    assert [tuple(x.shape) for x in all_layers] == [(2, 8, 16)] * 2

    normed = _bert_scaffold(
        layer_norm_before_pooling=True, hidden_cfg=None, hidden_cls=ScaledBlock(16)
    )
    outputs = normed(INPUTS)
    assert normed.output_layer_norm.name == "final_layer_norm"
    values = _np(outputs["sequence_output"])
    np.testing.assert_allclose(values.mean(-1), 0.0, atol=1e-4)
    np.testing.assert_array_equal(values, _np(outputs["encoder_outputs"][-1]))
    # Garden's models accept the list outputs too.
    classifier = BertClassifier(_bert_scaffold(dict_outputs=False), num_classes=3)
    assert tuple(classifier(INPUTS).shape) == (2, 3)


def test_recursive_layers_pass_their_state_on():
    scaffold = _bert_scaffold(
        hidden_cls=CountingBlock, hidden_cfg=None, num_hidden_instances=3, recursive=True
    )
    outputs = scaffold(INPUTS)
    first, second, third = (_np(x) for x in outputs["encoder_outputs"])
    np.testing.assert_allclose(second - first, 1.0, atol=1e-5)
    np.testing.assert_allclose(third - second, 2.0, atol=1e-5)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="lacks vocab_size"):
        EncoderScaffold(pooled_output_dim=4, embedding_cfg={"hidden_size": 4})
    with pytest.raises(ValueError, match="unknown keys vocab"):
        EncoderScaffold(pooled_output_dim=4, embedding_cfg={**EMBEDDING_CFG, "vocab": 3})
    with pytest.raises(ValueError, match="both 'dropout_rate' and 'output_dropout'"):
        _bert_scaffold(hidden_cfg={**LEGACY_HIDDEN_CFG, "output_dropout": 0.2})
    with pytest.raises(ValueError, match="num_hidden_instances"):
        _bert_scaffold(num_hidden_instances=0)
    with pytest.raises(ValueError, match="hidden_cfg does not fit TransformerEncoderBlock"):
        EncoderScaffold(pooled_output_dim=4, embedding_cfg=EMBEDDING_CFG)
