"""Tests of `BertEncoder`: the shared checks, BERT's published sizes and its options."""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_nlp.modeling.layers import OnDeviceEmbedding, TransformerEncoderBlock
from garden_nlp.modeling.networks import BertEncoder
from garden_nlp.testing import count_params, make_encoder_inputs, run_encoder_test

TINY = {
    "vocab_size": 100,
    "hidden_size": 16,
    "num_layers": 2,
    "num_attention_heads": 2,
    "inner_dim": 32,
    "max_sequence_length": 16,
    "type_vocab_size": 2,
}
INPUTS = make_encoder_inputs(batch_size=2, seq_length=8, vocab_size=100)


def _outputs(seq=8, hidden=16, layers=2, batch=2):
    return {
        "sequence_output": (batch, seq, hidden),
        "pooled_output": (batch, hidden),
        "encoder_outputs": [(batch, seq, hidden)] * layers,
    }


def _np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def test_tiny_bert_passes_the_shared_checks(tmp_path):
    run_encoder_test(BertEncoder, TINY, INPUTS, _outputs(), tmp_path)


def test_factorized_pre_norm_bert_passes_the_shared_checks(tmp_path):
    kwargs = {**TINY, "embedding_width": 8, "norm_first": True}
    encoder = run_encoder_test(BertEncoder, kwargs, INPUTS, _outputs(), tmp_path)
    assert tuple(encoder.embedding_projection.kernel.shape) == (8, 16)
    assert tuple(encoder.embedding_projection.bias.shape) == (16,)


def test_bert_base_has_the_published_parameter_count():
    # BERT-base, uncased vocabulary: 109,482,240 parameters with embeddings and pooler.
    encoder = BertEncoder(vocab_size=30522, type_vocab_size=2, initializer="zeros")
    encoder.build()
    assert count_params(encoder) == 109_482_240
    del encoder
    gc.collect()


def test_bert_large_has_the_published_parameter_count():
    encoder = BertEncoder(
        vocab_size=30522,
        type_vocab_size=2,
        hidden_size=1024,
        num_layers=24,
        num_attention_heads=16,
        inner_dim=4096,
        initializer="zeros",
    )
    encoder.build()
    assert count_params(encoder) == 335_141_888
    del encoder
    gc.collect()


def test_public_attributes_have_the_converter_shapes():
    encoder = BertEncoder(**TINY)
    encoder(INPUTS)
    assert encoder.hidden_size == 16
    assert isinstance(encoder.word_embeddings, OnDeviceEmbedding)
    assert tuple(encoder.word_embeddings.embeddings.shape) == (100, 16)
    assert tuple(encoder.position_embedding.embeddings.shape) == (16, 16)
    assert tuple(encoder.type_embeddings.embeddings.shape) == (2, 16)
    assert encoder.embedding_norm.epsilon == 1e-12
    assert tuple(encoder.embedding_norm.gamma.shape) == (16,)
    assert encoder.embedding_projection is None
    assert len(encoder.transformer_layers) == 2
    assert all(isinstance(x, TransformerEncoderBlock) for x in encoder.transformer_layers)
    assert tuple(encoder.pooler_layer.kernel.shape) == (16, 16)
    assert encoder.get_embedding_table() is encoder.word_embeddings.embeddings


def test_the_word_embedding_table_exists_before_the_first_call():
    encoder = BertEncoder(**TINY)
    assert tuple(encoder.get_embedding_table().shape) == (100, 16)


def test_pooled_output_is_the_tanh_pooler_of_the_first_token():
    encoder = BertEncoder(**TINY)
    outputs = encoder(INPUTS)
    first = _np(outputs["sequence_output"])[:, 0]
    kernel, bias = _np(encoder.pooler_layer.kernel), _np(encoder.pooler_layer.bias)
    np.testing.assert_allclose(_np(outputs["pooled_output"]), np.tanh(first @ kernel + bias), 1e-5)
    np.testing.assert_array_equal(
        _np(outputs["encoder_outputs"][-1]), _np(outputs["sequence_output"])
    )


def test_padding_tokens_do_not_change_the_real_tokens():
    encoder = BertEncoder(**TINY)
    changed = {key: value.copy() for key, value in INPUTS.items()}
    changed["input_word_ids"][1, 4:] = 7  # Padding positions of the second example.
    before, after = encoder(INPUTS), encoder(changed)
    np.testing.assert_allclose(
        _np(after["sequence_output"])[1, :4], _np(before["sequence_output"])[1, :4], atol=1e-5
    )
    np.testing.assert_allclose(_np(after["pooled_output"]), _np(before["pooled_output"]), 1e-5)


def test_output_range_keeps_the_first_tokens_of_the_last_layer():
    full = BertEncoder(**TINY)
    ranged = BertEncoder(**TINY, output_range=1)
    full_outputs = full(INPUTS)
    ranged(INPUTS)
    ranged.set_weights(full.get_weights())
    outputs = ranged(INPUTS)
    assert tuple(outputs["sequence_output"].shape) == (2, 1, 16)
    assert tuple(outputs["encoder_outputs"][0].shape) == (2, 8, 16)
    np.testing.assert_allclose(
        _np(outputs["sequence_output"]), _np(full_outputs["sequence_output"])[:, :1], atol=1e-5
    )
    np.testing.assert_allclose(
        _np(outputs["pooled_output"]), _np(full_outputs["pooled_output"]), atol=1e-5
    )


def test_attention_scores_are_returned_per_layer():
    encoder = BertEncoder(**TINY, return_attention_scores=True)
    outputs = encoder(INPUTS)
    assert [tuple(s.shape) for s in outputs["attention_scores"]] == [(2, 2, 8, 8)] * 2
    np.testing.assert_allclose(_np(outputs["attention_scores"][0])[1, :, :, 4:], 0.0, atol=1e-6)


def test_a_shared_embedding_layer_is_used_and_rebuilt_from_config():
    shared = OnDeviceEmbedding(vocab_size=100, embedding_width=16, name="shared_embeddings")
    first = BertEncoder(**TINY, embedding_layer=shared)
    second = BertEncoder(**TINY, embedding_layer=shared)
    assert first.get_embedding_table() is second.get_embedding_table()
    first(INPUTS)
    copy = BertEncoder.from_config(first.get_config())
    assert copy.word_embeddings is not shared
    assert copy.word_embeddings.name == "shared_embeddings"


def test_bad_inputs_and_settings_are_named():
    encoder = BertEncoder(**TINY)
    with pytest.raises(ValueError, match="lack input_type_ids"):
        encoder({"input_word_ids": INPUTS["input_word_ids"], "input_mask": INPUTS["input_mask"]})
    with pytest.raises(ValueError, match="takes a dict"):
        encoder(INPUTS["input_word_ids"])
    too_long = make_encoder_inputs(batch_size=1, seq_length=17, vocab_size=100)
    with pytest.raises(ValueError, match="max_length=16"):
        encoder(too_long)
    with pytest.raises(ValueError, match="not a multiple"):
        BertEncoder(**{**TINY, "num_attention_heads": 3})
    with pytest.raises(ValueError, match="num_layers"):
        BertEncoder(**{**TINY, "num_layers": 0})


def test_mixed_float16_outputs_are_float16_and_finite():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        encoder = BertEncoder(**TINY)
        outputs = encoder(INPUTS, training=True)
    finally:
        keras.config.set_dtype_policy(previous)
    assert outputs["sequence_output"].dtype == tf.float16
    assert encoder.get_embedding_table().dtype == "float32"
    assert np.all(np.isfinite(_np(outputs["pooled_output"])))


def test_a_traced_serving_function_accepts_any_batch_and_length():
    encoder = BertEncoder(**TINY)
    spec = tf.TensorSpec([None, None], tf.int32)
    serve = tf.function(
        lambda inputs: encoder(inputs)["pooled_output"],
        input_signature=[{"input_word_ids": spec, "input_mask": spec, "input_type_ids": spec}],
    )
    for batch, seq in ((1, 3), (3, 8)):
        inputs = make_encoder_inputs(batch_size=batch, seq_length=seq, vocab_size=100)
        assert serve(inputs).shape == (batch, 16)
