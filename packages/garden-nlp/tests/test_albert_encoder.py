"""Tests of `AlbertEncoder`: the shared checks, weight sharing and ALBERT-base's size."""

from __future__ import annotations

import gc

import keras
import numpy as np

from garden_nlp.modeling.layers import TransformerEncoderBlock
from garden_nlp.modeling.networks import AlbertEncoder
from garden_nlp.testing import count_params, make_encoder_inputs, run_encoder_test

TINY = {
    "vocab_size": 100,
    "embedding_width": 8,
    "hidden_size": 16,
    "num_layers": 3,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_sequence_length": 16,
    "type_vocab_size": 2,
    "dict_outputs": True,
}
INPUTS = make_encoder_inputs(batch_size=2, seq_length=8, vocab_size=100)


def test_tiny_albert_passes_the_shared_checks(tmp_path):
    encoder = run_encoder_test(
        AlbertEncoder,
        TINY,
        INPUTS,
        {
            "sequence_output": (2, 8, 16),
            "pooled_output": (2, 16),
            "encoder_outputs": [(2, 8, 16)] * 3,
        },
        tmp_path,
    )
    assert tuple(encoder.word_embeddings.embeddings.shape) == (100, 8)
    assert tuple(encoder.embedding_projection.kernel.shape) == (8, 16)
    assert encoder.hidden_size == 16


def test_one_layer_is_shared_by_every_depth():
    shallow = AlbertEncoder(**{**TINY, "num_layers": 1})
    deep = AlbertEncoder(**{**TINY, "num_layers": 6})
    shallow(INPUTS)
    outputs = deep(INPUTS)
    assert count_params(deep) == count_params(shallow)
    assert len(deep.weights) == len(shallow.weights)
    assert isinstance(deep.shared_layer, TransformerEncoderBlock)
    block_weights = {id(w) for w in deep.shared_layer.weights}
    assert block_weights <= {id(w) for w in deep.weights}
    # The depth still matters: each application transforms the previous output.
    layer_outputs = [keras.ops.convert_to_numpy(x) for x in outputs["encoder_outputs"]]
    assert len(layer_outputs) == 6
    assert not np.allclose(layer_outputs[0], layer_outputs[1])
    deep.set_weights(shallow.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(deep(INPUTS)["encoder_outputs"][0]),
        keras.ops.convert_to_numpy(shallow(INPUTS)["sequence_output"]),
        atol=1e-5,
    )


def test_list_outputs_are_model_gardens_default():
    encoder = AlbertEncoder(**{**TINY, "dict_outputs": False})
    sequence_output, pooled_output = encoder(INPUTS)
    assert tuple(sequence_output.shape) == (2, 8, 16)
    assert tuple(pooled_output.shape) == (2, 16)


def test_albert_base_has_the_published_parameter_count():
    # ALBERT-base: 11,683,584 parameters (the "12M" of the paper).
    encoder = AlbertEncoder(vocab_size=30000, type_vocab_size=2, initializer="zeros")
    encoder.build()
    assert count_params(encoder) == 11_683_584
    del encoder
    gc.collect()
