"""Tests of the task models: shared checks, heads, checkpoint items and mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_nlp.modeling.layers import ClassificationHead, MaskedLM
from garden_nlp.modeling.models import (
    BertClassifier,
    BertPretrainer,
    BertSpanLabeler,
    BertTokenClassifier,
)
from garden_nlp.modeling.networks import AlbertEncoder, BertEncoder
from garden_nlp.testing import check_mixed_precision, make_encoder_inputs, run_model_test

INPUTS = make_encoder_inputs(batch_size=2, seq_length=8, vocab_size=100)
POSITIONS = np.array([[1, 2, 5], [0, 3, 3]], np.int32)
ENCODER_SHAPES = {
    "sequence_output": (2, 8, 16),
    "pooled_output": (2, 16),
    "encoder_outputs": [(2, 8, 16)] * 2,
}


def _encoder(**kwargs) -> BertEncoder:
    settings = {
        "vocab_size": 100,
        "hidden_size": 16,
        "num_layers": 2,
        "num_attention_heads": 2,
        "inner_dim": 32,
        "max_sequence_length": 16,
        "type_vocab_size": 2,
    }
    return BertEncoder(**{**settings, **kwargs})


def _np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


# The shared checks, model by model. The pooler gets no gradient where no output reads it.


def test_classifier_passes_the_shared_checks(tmp_path):
    model = run_model_test(
        lambda: BertClassifier(_encoder(), num_classes=3), INPUTS, (2, 3), tmp_path
    )
    assert model.classifier.name == "sentence_prediction"
    assert model.classifier.dense is None
    assert model.checkpoint_items == {
        "encoder": model.encoder,
        "sentence_prediction": model.classifier,
    }


def test_classifier_with_its_own_pooling_head(tmp_path):
    model = run_model_test(
        lambda: BertClassifier(_encoder(), num_classes=1, use_encoder_pooler=False),
        INPUTS,
        (2, 1),
        tmp_path,
        run_saving=False,
        no_gradient=("pooler_transform",),
    )
    assert tuple(model.classifier.dense.kernel.shape) == (16, 16)
    assert set(model.checkpoint_items) == {"encoder", "sentence_prediction"}


def test_pretrainer_passes_the_shared_checks(tmp_path):
    model = run_model_test(
        lambda: BertPretrainer(_encoder()),
        {**INPUTS, "masked_lm_positions": POSITIONS},
        {**ENCODER_SHAPES, "mlm_logits": (2, 3, 100), "next_sentence": (2, 2)},
        tmp_path,
        no_gradient=("pooler_transform",),
    )
    assert set(model.checkpoint_items) == {"encoder", "masked_lm", "next_sentence"}
    assert model.masked_lm.embedding_table is model.encoder.get_embedding_table()
    assert model.encoder_network is model.encoder


def test_span_labeler_passes_the_shared_checks(tmp_path):
    model = run_model_test(
        lambda: BertSpanLabeler(_encoder()),
        INPUTS,
        {"start_logits": (2, 8), "end_logits": (2, 8)},
        tmp_path,
        no_gradient=("pooler_transform",),
    )
    assert set(model.checkpoint_items) == {"encoder"}


def test_token_classifier_passes_the_shared_checks(tmp_path):
    model = run_model_test(
        lambda: BertTokenClassifier(_encoder(), num_classes=5),
        INPUTS,
        (2, 8, 5),
        tmp_path,
        run_saving=False,
        no_gradient=("pooler_transform",),
    )
    assert set(model.checkpoint_items) == {"encoder"}


# Behaviour.


def test_pretrainer_heads_compute_masked_lm_and_next_sentence():
    model = BertPretrainer(_encoder())
    outputs = model({**INPUTS, "masked_lm_positions": POSITIONS})
    sequence = outputs["sequence_output"]
    np.testing.assert_allclose(
        _np(outputs["mlm_logits"]),
        _np(model.masked_lm(sequence, masked_positions=POSITIONS)),
        atol=1e-6,
    )
    head = model.classification_heads[0]
    assert (head.name, head.inner_dim, head.num_classes) == ("next_sentence", 16, 2)
    np.testing.assert_allclose(_np(outputs["next_sentence"]), _np(head(sequence)), atol=1e-6)
    # Serving without masked positions skips the masked-LM head.
    assert "mlm_logits" not in model(INPUTS)
    assert "next_sentence" not in BertPretrainer(_encoder(), classification_heads=())(INPUTS)


def test_pretrainer_trains_the_tied_word_embeddings_through_the_masked_lm():
    model = BertPretrainer(_encoder(), classification_heads=())
    inputs = {**INPUTS, "masked_lm_positions": POSITIONS}
    model(inputs)
    table = model.encoder.get_embedding_table()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(inputs, training=True)["mlm_logits"])
    gradient = tf.convert_to_tensor(tape.gradient(loss, table))
    # Every row gets a gradient through the output projection, not just the input tokens.
    assert np.all(np.abs(_np(gradient)).sum(-1) > 0)


def test_pretrainer_rejects_clashing_head_names():
    heads = [ClassificationHead(4, 2, name="task"), ClassificationHead(4, 3, name="task")]
    with pytest.raises(ValueError, match="unique names"):
        BertPretrainer(_encoder(), classification_heads=heads)
    with pytest.raises(ValueError, match="clash"):
        BertPretrainer(_encoder(), classification_heads=[ClassificationHead(4, 2, name="encoder")])


def test_pretrainer_with_a_customized_masked_lm_round_trips_its_config():
    encoder = _encoder()
    masked_lm = MaskedLM(encoder.get_embedding_table(), activation="relu", name="custom_mlm")
    model = BertPretrainer(encoder, customized_masked_lm=masked_lm)
    model({**INPUTS, "masked_lm_positions": POSITIONS})
    rebuilt = BertPretrainer.from_config(model.get_config())
    assert rebuilt.masked_lm.name == "custom_mlm"
    assert rebuilt.masked_lm.activation == "relu"
    assert rebuilt.masked_lm.embedding_table is rebuilt.encoder.get_embedding_table()


def test_a_pretrained_encoder_restores_into_fine_tuning_models(tmp_path):
    pretrainer = BertPretrainer(_encoder())
    inputs = {**INPUTS, "masked_lm_positions": POSITIONS}
    pretrainer(inputs)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(pretrainer(inputs, training=True)["mlm_logits"] ** 2)
    variables = pretrainer.trainable_variables
    keras.optimizers.SGD(1.0).apply_gradients(
        (g, v)
        for g, v in zip(tape.gradient(loss, variables), variables, strict=True)
        if g is not None
    )
    path = tf.train.Checkpoint(**pretrainer.checkpoint_items).save(str(tmp_path / "pretrained"))
    names = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    assert {"encoder", "masked_lm", "next_sentence"} <= names

    for model in (
        BertClassifier(_encoder(), num_classes=2),
        BertSpanLabeler(_encoder()),
        BertTokenClassifier(_encoder(), num_classes=4),
    ):
        model(INPUTS)
        # Fine-tuning reads the encoder item; the task head starts fresh.
        status = tf.train.Checkpoint(encoder=model.checkpoint_items["encoder"]).read(path)
        status.assert_existing_objects_matched().expect_partial()
        for restored, trained in zip(
            model.encoder.weights, pretrainer.encoder.weights, strict=True
        ):
            np.testing.assert_array_equal(_np(restored), _np(trained), err_msg=restored.path)
        np.testing.assert_allclose(
            _np(model.encoder(INPUTS)["sequence_output"]),
            _np(pretrainer.encoder(INPUTS)["sequence_output"]),
            atol=1e-6,
        )


def test_an_albert_encoder_plugs_into_the_models():
    encoder = AlbertEncoder(
        vocab_size=100,
        embedding_width=8,
        hidden_size=16,
        num_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        dict_outputs=True,
    )
    outputs = BertPretrainer(encoder)({**INPUTS, "masked_lm_positions": POSITIONS})
    assert tuple(outputs["mlm_logits"].shape) == (2, 3, 100)
    assert tuple(BertClassifier(encoder, num_classes=2)(INPUTS).shape) == (2, 2)


def test_token_classifier_predictions_and_encoder_outputs():
    model = BertTokenClassifier(
        _encoder(), num_classes=4, output="predictions", output_encoder_outputs=True
    )
    outputs = model(INPUTS)
    np.testing.assert_allclose(np.exp(_np(outputs["logits"])).sum(-1), 1.0, atol=1e-5)
    assert tuple(outputs["encoder_outputs"].shape) == (2, 8, 16)
    with pytest.raises(ValueError, match="output"):
        BertTokenClassifier(_encoder(), num_classes=4, output="probabilities")


def test_logits_are_float32_under_mixed_float16():
    cases = [
        (lambda: BertClassifier(_encoder(), num_classes=3), INPUTS),
        (lambda: BertPretrainer(_encoder()), {**INPUTS, "masked_lm_positions": POSITIONS}),
        (lambda: BertSpanLabeler(_encoder()), INPUTS),
        (lambda: BertTokenClassifier(_encoder(), num_classes=4), INPUTS),
    ]
    for make_model, inputs in cases:
        outputs = check_mixed_precision(make_model, inputs, policy="mixed_float16")
        for key, value in outputs.items():
            if key in ("sequence_output", "pooled_output") or key.startswith("encoder_outputs"):
                assert value.dtype == np.float16, key
            else:
                assert value.dtype == np.float32, key
