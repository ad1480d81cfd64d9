"""Tests of garden-nlp's layers: the Transformer block, embeddings, masks and heads."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_nlp.modeling.layers import (
    ClassificationHead,
    MaskedLM,
    OnDeviceEmbedding,
    PositionEmbedding,
    SelfAttentionMask,
    TransformerEncoderBlock,
)
from garden_nlp.modeling.networks import SpanLabeling

_erf = np.vectorize(math.erf)


def _np(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def _layer_norm(x, layer) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * _np(layer.gamma) + _np(layer.beta)


def _attention(query, key_value, mask, attention) -> tuple[np.ndarray, np.ndarray]:
    """Multi-head attention from the layer's weights, in float64."""

    def project(x, dense):
        return np.einsum("bsh,hnd->bsnd", x, _np(dense.kernel)) + _np(dense.bias)

    q = project(query, attention.query_dense)
    k = project(key_value, attention.key_dense)
    v = project(key_value, attention.value_dense)
    scores = np.einsum("btnd,bsnd->bnts", q, k) / math.sqrt(q.shape[-1])
    scores = np.where(mask[:, None] > 0.5, scores, -1e9)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = np.einsum("bnts,bsnd->btnd", probs, v)
    output = np.einsum("btnd,ndh->bth", context, _np(attention.output_dense.kernel))
    return output + _np(attention.output_dense.bias), probs


def _feed_forward(x, block, activation) -> np.ndarray:
    inner = x @ _np(block.intermediate_dense.kernel) + _np(block.intermediate_dense.bias)
    inner = activation(inner)
    return inner @ _np(block.output_dense.kernel) + _np(block.output_dense.bias)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _block_inputs(batch=2, seq=6, hidden=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, seq, hidden)).astype(np.float32)
    padding = np.ones((batch, seq), np.float32)
    padding[1, 4:] = 0
    mask = np.asarray(SelfAttentionMask()(tf.constant(x), tf.constant(padding)))
    return x, padding, mask


def _block(**kwargs) -> TransformerEncoderBlock:
    defaults = {"num_attention_heads": 2, "inner_dim": 16, "inner_activation": "gelu"}
    return TransformerEncoderBlock(**{**defaults, **kwargs})


# TransformerEncoderBlock.


def test_post_norm_block_computes_berts_layer():
    x, _, mask = _block_inputs()
    block = _block(kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.3))
    output = _np(block([x, mask]))

    attention, _ = _attention(x, x, mask, block.attention_layer)
    hidden = _layer_norm(x + attention, block.attention_layer_norm)
    expected = _layer_norm(hidden + _feed_forward(hidden, block, _gelu), block.output_layer_norm)
    np.testing.assert_allclose(output, expected, atol=2e-5)
    assert block.attention_layer_norm.epsilon == block.output_layer_norm.epsilon == 1e-12


def test_pre_norm_block_normalizes_sublayer_inputs():
    x, _, mask = _block_inputs()
    block = _block(norm_first=True, inner_activation="relu")
    output = _np(block([x, mask]))

    normed = _layer_norm(x, block.attention_layer_norm)
    hidden = x + _attention(normed, normed, mask, block.attention_layer)[0]
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    expected = hidden + _feed_forward(_layer_norm(hidden, block.output_layer_norm), block, relu)
    np.testing.assert_allclose(output, expected, atol=2e-5)


def test_block_weights_have_the_converter_shapes():
    x, _, mask = _block_inputs(hidden=8)
    block = _block(num_attention_heads=2, inner_dim=16)
    block([x, mask])
    attention = block.attention_layer
    assert isinstance(attention, keras.layers.MultiHeadAttention)
    for dense in (attention.query_dense, attention.key_dense, attention.value_dense):
        assert tuple(dense.kernel.shape) == (8, 2, 4)
        assert tuple(dense.bias.shape) == (2, 4)
    assert tuple(attention.output_dense.kernel.shape) == (2, 4, 8)
    assert tuple(block.intermediate_dense.kernel.shape) == (8, 16)
    assert tuple(block.output_dense.kernel.shape) == (16, 8)
    assert tuple(block.output_dense.bias.shape) == (8,)


def test_padded_keys_do_not_change_the_real_tokens():
    x, padding, mask = _block_inputs()
    block = _block()
    changed = x.copy()
    changed[1, 4:] += 10.0  # Only padding positions of the second example change.
    before, after = _np(block([x, mask])), _np(block([changed, mask]))
    np.testing.assert_allclose(after[1, :4], before[1, :4], atol=1e-5)
    np.testing.assert_allclose(after[0], before[0], atol=1e-6)
    assert padding[1, 4:].sum() == 0


@pytest.mark.parametrize("norm_first", [False, True])
def test_output_range_computes_only_the_first_queries(norm_first):
    x, _, mask = _block_inputs()
    block = _block(norm_first=norm_first)
    full = _np(block([x, mask]))
    first = _np(block([x, mask], output_range=1))
    assert first.shape == (2, 1, 8)
    np.testing.assert_allclose(first, full[:, :1], atol=1e-5)
    ranged = _block(norm_first=norm_first, output_range=3)
    ranged([x, mask])
    ranged.set_weights(block.get_weights())
    np.testing.assert_allclose(_np(ranged([x, mask])), full[:, :3], atol=1e-5)


def test_attention_scores_are_probabilities_over_real_tokens():
    x, padding, mask = _block_inputs()
    block = _block(return_attention_scores=True)
    output, scores = block([x, mask])
    scores = _np(scores)
    assert output.shape == (2, 6, 8)
    assert scores.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores[1, :, :, 4:], 0.0, atol=1e-6)
    expected = _attention(x, x, mask, block.attention_layer)[1]
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_block_dropout_only_in_training():
    x, _, mask = _block_inputs()
    block = _block(output_dropout=0.5, attention_dropout=0.5, inner_dropout=0.5)
    inference = [_np(block([x, mask], training=False)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    assert not np.allclose(_np(block([x, mask], training=True)), inference[0])


def test_block_config_round_trip_and_checkpoint(tmp_path):
    x, _, mask = _block_inputs()
    block = _block(norm_first=True, output_dropout=0.1, key_dim=3)
    expected = _np(block([x, mask]))
    rebuilt = TransformerEncoderBlock.from_config(block.get_config())
    rebuilt([x, mask])
    assert rebuilt.count_params() == block.count_params()
    path = tf.train.Checkpoint(block=block).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(block=rebuilt).read(path).assert_existing_objects_matched()
    np.testing.assert_allclose(_np(rebuilt([x, mask])), expected, atol=1e-6)


def test_cross_attention_with_its_own_key_value_norm():
    x, _, _ = _block_inputs(seq=6)
    key_value = np.random.default_rng(3).normal(size=(2, 4, 8)).astype(np.float32)
    mask = np.ones((2, 6, 4), np.float32)
    block = _block(norm_first=True, diff_q_kv_att_layer_norm=True)
    output = _np(block([x, key_value, mask]))
    assert block.attention_layer_norm_kv is not block.attention_layer_norm
    normed_q = _layer_norm(x, block.attention_layer_norm)
    normed_kv = _layer_norm(key_value, block.attention_layer_norm_kv)
    hidden = x + _attention(normed_q, normed_kv, mask, block.attention_layer)[0]
    normed = _layer_norm(hidden, block.output_layer_norm)
    expected = hidden + _feed_forward(normed, block, _gelu)
    np.testing.assert_allclose(output, expected, atol=2e-5)


def test_output_width_without_the_query_residual():
    x, _, mask = _block_inputs()
    block = _block(output_last_dim=6, use_query_residual=False)
    assert tuple(block([x, mask]).shape) == (2, 6, 6)
    with pytest.raises(ValueError, match="use_query_residual=False"):
        _block(output_last_dim=6)([x, mask])


def test_block_rejects_bad_settings():
    with pytest.raises(ValueError, match="output_dropout"):
        _block(output_dropout=1.5)
    with pytest.raises(ValueError, match="not a multiple"):
        _block(num_attention_heads=3)(np.zeros((1, 2, 8), np.float32))
    with pytest.raises(ValueError, match="norm_first"):
        _block(diff_q_kv_att_layer_norm=True)


def test_block_under_mixed_float16():
    x, _, mask = _block_inputs()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        block = _block()
        output = block([x, mask])
    finally:
        keras.config.set_dtype_policy(previous)
    assert output.dtype == tf.float16
    assert block.attention_layer.query_dense.kernel.dtype == "float32"
    assert np.all(np.isfinite(_np(output)))


# Embeddings and masks.


def test_one_hot_and_gather_lookups_are_identical():
    ids = np.array([[0, 3, 9], [9, 1, 1]], np.int32)
    gather = OnDeviceEmbedding(vocab_size=10, embedding_width=4)
    one_hot = OnDeviceEmbedding(vocab_size=10, embedding_width=4, use_one_hot=True)
    gathered = _np(gather(ids))
    one_hot(ids)
    one_hot.set_weights(gather.get_weights())
    np.testing.assert_array_equal(_np(one_hot(ids)), gathered)
    np.testing.assert_array_equal(gathered, _np(gather.embeddings)[ids])
    assert gathered.shape == (2, 3, 4)


def test_embedding_scale_factor_and_config():
    embedding = OnDeviceEmbedding(vocab_size=5, embedding_width=3, scale_factor=2.0)
    ids = np.array([[1, 2]], np.int32)
    np.testing.assert_allclose(_np(embedding(ids)), 2.0 * _np(embedding.embeddings)[ids])
    rebuilt = OnDeviceEmbedding.from_config(embedding.get_config())
    assert (rebuilt.vocab_size, rebuilt.embedding_width, rebuilt.scale_factor) == (5, 3, 2.0)
    with pytest.raises(ValueError, match="vocab_size"):
        OnDeviceEmbedding(vocab_size=0, embedding_width=3)


def test_position_embedding_returns_the_leading_rows():
    layer = PositionEmbedding(max_length=6)
    inputs = np.zeros((2, 4, 3), np.float32)
    output = _np(layer(inputs))
    assert tuple(layer.embeddings.shape) == (6, 3)
    assert output.shape == (2, 4, 3)
    np.testing.assert_array_equal(output[0], _np(layer.embeddings)[:4])
    np.testing.assert_array_equal(output[1], output[0])
    with pytest.raises(ValueError, match="max_length=6"):
        layer(np.zeros((1, 7, 3), np.float32))


def test_position_embedding_checks_dynamic_lengths():
    layer = PositionEmbedding(max_length=4)
    call = tf.function(layer, input_signature=[tf.TensorSpec([None, None, 2], tf.float32)])
    assert call(tf.zeros([1, 3, 2])).shape == (1, 3, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length=4"):
        call(tf.zeros([1, 5, 2]))


def test_self_attention_mask_repeats_the_padding_mask():
    padding = np.array([[1, 1, 0], [1, 0, 0]], np.int32)
    embeddings = np.zeros((2, 3, 4), np.float32)
    mask = _np(SelfAttentionMask()(embeddings, padding))
    assert mask.shape == (2, 3, 3)
    for b in range(2):
        for i in range(3):
            np.testing.assert_array_equal(mask[b, i], padding[b])
    np.testing.assert_array_equal(_np(SelfAttentionMask()(padding)), mask)
    np.testing.assert_array_equal(_np(SelfAttentionMask()([embeddings, padding])), mask)


# Heads.


def test_masked_lm_ties_the_output_to_the_embedding_table():
    embedding = OnDeviceEmbedding(vocab_size=11, embedding_width=4)
    embedding.build((None, None))
    head = MaskedLM(embedding_table=embedding.embeddings, activation="gelu")
    sequence = np.random.default_rng(0).normal(size=(2, 5, 6)).astype(np.float32)
    positions = np.array([[0, 4], [2, 2]], np.int32)
    logits = _np(head(sequence, masked_positions=positions))
    assert logits.shape == (2, 2, 11)
    assert tuple(head.dense.kernel.shape) == (6, 4)
    assert tuple(head.bias.shape) == (11,)
    assert head.layer_norm.epsilon == 1e-12

    selected = np.take_along_axis(sequence, positions[..., None], axis=1)
    hidden = _gelu(selected @ _np(head.dense.kernel) + _np(head.dense.bias))
    expected = _layer_norm(hidden, head.layer_norm) @ _np(embedding.embeddings).T
    np.testing.assert_allclose(logits, expected + _np(head.bias), atol=1e-5)

    predictions = MaskedLM(embedding.embeddings, output="predictions")
    log_probs = _np(predictions(sequence, masked_positions=positions))
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="output"):
        MaskedLM(embedding.embeddings, output="probabilities")


def test_classification_head_pools_the_cls_token():
    sequence = np.random.default_rng(1).normal(size=(2, 4, 6)).astype(np.float32)
    head = ClassificationHead(inner_dim=5, num_classes=3, cls_token_idx=1)
    logits = _np(head(sequence))
    pooled = np.tanh(sequence[:, 1] @ _np(head.dense.kernel) + _np(head.dense.bias))
    expected = pooled @ _np(head.out_proj.kernel) + _np(head.out_proj.bias)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    np.testing.assert_allclose(_np(head(sequence, only_project=True)), pooled, atol=1e-5)
    assert head.name == "cls_head"
    assert head.checkpoint_items == {"pooler_dense": head.dense}

    projection = ClassificationHead(inner_dim=0, num_classes=2)
    assert projection.dense is None
    assert projection(sequence[:, 0]).shape == (2, 2)
    assert projection.checkpoint_items == {}
    with pytest.raises(ValueError, match=r"\[batch, seq, hidden\]"):
        ClassificationHead(inner_dim=4, num_classes=2)(sequence[:, 0])


def test_span_labeling_splits_start_and_end_logits():
    sequence = np.random.default_rng(2).normal(size=(2, 5, 6)).astype(np.float32)
    head = SpanLabeling(input_width=6)
    start, end = head(sequence)
    logits = sequence @ _np(head.dense.kernel) + _np(head.dense.bias)
    np.testing.assert_allclose(_np(start), logits[..., 0], atol=1e-5)
    np.testing.assert_allclose(_np(end), logits[..., 1], atol=1e-5)
    with pytest.raises(ValueError, match="input_width=8"):
        SpanLabeling(input_width=8)(sequence)
