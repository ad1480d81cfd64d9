"""Tests of `garden-convert-tf1-bert`: original TF1 BERT checkpoints into Garden's BERT.

Each test writes a tiny random checkpoint exactly as original BERT's training did (a
`tf.compat.v1.train.Saver` over name-based graph variables, with Adam slots and
`global_step`), converts it through the command's `main`, restores the output into a fresh
encoder built from the written `encoder_config.yaml`, and compares with the NumPy reference.
"""

from __future__ import annotations

import json
import os

import bert_numpy_reference as reference
import numpy as np
import pytest
import tensorflow as tf

from garden_nlp.configs.encoders import EncoderConfig
from garden_nlp.modeling.encoders import build_encoder
from garden_nlp.modeling.models import BertPretrainer
from garden_nlp.tools import tf1_bert_converter
from garden_nlp.tools.bert_checkpoint_writing import ENCODER_CONFIG_FILE

BERT_CONFIG = {
    "vocab_size": 40,
    "hidden_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 3,
    "intermediate_size": 40,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}
MASK = np.array([[1] * 8, [1] * 5 + [0] * 3], np.int32)


def write_tf1_checkpoint(prefix: str, tensors: dict[str, np.ndarray], slots: bool = True) -> str:
    """Writes `tensors` as a TF1 `Saver` checkpoint, with Adam slots and `global_step`."""
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in tensors.items()]
        if slots:
            for name, value in tensors.items():
                for slot in ("adam_m", "adam_v"):
                    variables.append(
                        tf.compat.v1.Variable(np.zeros_like(value), name=f"{name}/{slot}")
                    )
        variables.append(tf.compat.v1.train.get_or_create_global_step())
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, prefix, write_meta_graph=False)


@pytest.fixture(scope="module")
def weights():
    return reference.random_weights(BERT_CONFIG, seed=3, heads=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory, weights):
    """A TF1 checkpoint with the pretraining heads, slots and global_step, and its config."""
    root = tmp_path_factory.mktemp("tf1_bert")
    config_file = root / "bert_config.json"
    config_file.write_text(json.dumps(BERT_CONFIG))
    return write_tf1_checkpoint(str(root / "bert_model.ckpt"), weights), str(config_file)


def inputs():
    rng = np.random.default_rng(7)
    ids = rng.integers(1, BERT_CONFIG["vocab_size"], MASK.shape).astype(np.int32) * MASK
    types = np.array([[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0, 0]], np.int32)
    return {"input_word_ids": ids, "input_mask": MASK, "input_type_ids": types}


def convert(checkpoint, config_file, output_dir, *flags):
    return tf1_bert_converter.main(
        [
            f"--checkpoint_to_convert={checkpoint}",
            f"--bert_config_file={config_file}",
            f"--output_dir={output_dir}",
            *flags,
        ]
    )


def restored_encoder(output_dir):
    config = EncoderConfig.from_yaml(os.path.join(output_dir, ENCODER_CONFIG_FILE))
    encoder = build_encoder(config)
    encoder({k: tf.constant(v) for k, v in inputs().items()})
    return encoder


def assert_encoder_matches(outputs, weights):
    data = inputs()
    want = reference.bert_forward(weights, BERT_CONFIG, **data)
    real = data["input_mask"] == 1
    np.testing.assert_allclose(
        np.asarray(outputs["sequence_output"])[real],
        want["sequence_output"][real],
        atol=1e-5,
        rtol=0,
    )
    np.testing.assert_allclose(outputs["pooled_output"], want["pooled_output"], atol=1e-5, rtol=0)
    return want


def test_converted_encoder_matches_reference(source, weights, tmp_path, capsys):
    checkpoint, config_file = source
    output_dir = tmp_path / "garden_bert"
    assert convert(checkpoint, config_file, output_dir) == 0
    out = capsys.readouterr().out
    assert "converted 39 tensors" in out
    assert "ignored 1 global_step, 92 optimizer, 7 pretraining-head tensors" in out

    config = EncoderConfig.from_yaml(str(output_dir / ENCODER_CONFIG_FILE))
    assert config.type == "bert"
    assert (config.bert.num_layers, config.bert.num_attention_heads) == (2, 3)
    assert (config.bert.vocab_size, config.bert.intermediate_size) == (40, 40)
    # Without the flag the heads stay out: the checkpoint holds the encoder only.
    names = [name for name, _ in tf.train.list_variables(str(output_dir / "bert_model.ckpt"))]
    assert not [n for n in names if n.startswith(("masked_lm", "next_sentence"))]
    assert tf.train.latest_checkpoint(str(output_dir)) == str(output_dir / "bert_model.ckpt")

    encoder = restored_encoder(str(output_dir))
    status = tf.train.Checkpoint(encoder=encoder).read(str(output_dir / "bert_model.ckpt"))
    status.assert_consumed()
    outputs = encoder({k: tf.constant(v) for k, v in inputs().items()}, training=False)
    assert_encoder_matches(outputs, weights)


def test_pretraining_heads_match_reference(source, weights, tmp_path, capsys):
    checkpoint, config_file = source
    output_dir = tmp_path / "pretrainer"
    assert convert(checkpoint, config_file, output_dir, "--include_pretraining_heads") == 0
    out = capsys.readouterr().out
    assert "masked_lm" in out
    assert "next_sentence" in out

    encoder = restored_encoder(str(output_dir))
    pretrainer = BertPretrainer(encoder_network=encoder)  # with its default next_sentence head
    positions = np.array([[1, 3, 6], [0, 2, 4]], np.int32)
    features = {k: tf.constant(v) for k, v in inputs().items()}
    features["masked_lm_positions"] = tf.constant(positions)
    pretrainer(features)
    tf.train.Checkpoint(**pretrainer.checkpoint_items).read(
        str(output_dir / "bert_model.ckpt")
    ).assert_consumed()
    outputs = pretrainer(features, training=False)

    want = assert_encoder_matches(outputs, weights)
    np.testing.assert_allclose(
        outputs["mlm_logits"],
        reference.masked_lm_logits(weights, BERT_CONFIG, want["sequence_output"], positions),
        atol=1e-5,
        rtol=0,
    )
    np.testing.assert_allclose(
        outputs["next_sentence"],
        reference.next_sentence_logits(weights, want["pooled_output"]),
        atol=1e-5,
        rtol=0,
    )


def test_missing_variable_is_named_and_nothing_is_written(tmp_path, weights, capsys):
    partial = {
        k: v for k, v in weights.items() if k != "bert/encoder/layer_1/attention/self/value/bias"
    }
    checkpoint = write_tf1_checkpoint(str(tmp_path / "src" / "bert_model.ckpt"), partial)
    config_file = tmp_path / "bert_config.json"
    config_file.write_text(json.dumps(BERT_CONFIG))
    output_dir = tmp_path / "out" / "garden_bert"

    assert convert(checkpoint, config_file, output_dir) == 1
    assert "bert/encoder/layer_1/attention/self/value/bias" in capsys.readouterr().err
    assert not output_dir.exists()
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_shape_mismatch_names_source_and_garden_variable(source, tmp_path, capsys):
    checkpoint, _ = source
    config_file = tmp_path / "bert_config.json"
    config_file.write_text(json.dumps({**BERT_CONFIG, "intermediate_size": 48}))

    assert convert(checkpoint, config_file, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "`bert/encoder/layer_0/intermediate/dense/kernel` has shape [24, 40]" in err
    assert "needs [24, 48]" in err
    assert "intermediate" in err.split("Garden variable")[1]
    assert not (tmp_path / "out").exists()


def test_unknown_variables_are_listed(tmp_path, weights, capsys):
    extra = {**weights, "output_weights": np.zeros((3, 24), np.float32)}
    checkpoint = write_tf1_checkpoint(str(tmp_path / "bert_model.ckpt"), extra, slots=False)
    config_file = tmp_path / "bert_config.json"
    config_file.write_text(json.dumps(BERT_CONFIG))

    assert convert(checkpoint, config_file, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "does not use: output_weights;" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_act": "swish"}, "`hidden_act` = 'swish' is not supported"),
        ({"embedding_size": 8}, "embedding_size are not fields of an original BERT config"),
        ({"num_attention_heads": 5}, "not a multiple of `num_attention_heads` = 5"),
        ({"vocab_size": "40"}, "`vocab_size` must be an integer"),
        ({"pooler_type": "mean"}, "`pooler_type` = 'mean' is not supported"),
    ],
)
def test_bad_config_is_refused(source, tmp_path, capsys, change, message):
    checkpoint, _ = source
    config_file = tmp_path / "bert_config.json"
    config_file.write_text(json.dumps({**BERT_CONFIG, **change}))

    assert convert(checkpoint, config_file, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert message in err
    assert str(config_file) in err


def test_missing_config_field_is_named(source, tmp_path, capsys):
    checkpoint, _ = source
    config_file = tmp_path / "bert_config.json"
    config_file.write_text(json.dumps({k: v for k, v in BERT_CONFIG.items() if k != "hidden_size"}))

    assert convert(checkpoint, config_file, tmp_path / "out") == 1
    assert "the required field `hidden_size` is missing" in capsys.readouterr().err


def test_object_based_checkpoint_is_refused(source, tmp_path, capsys):
    checkpoint, config_file = source
    assert convert(checkpoint, config_file, tmp_path / "garden") == 0
    assert convert(tmp_path / "garden", config_file, tmp_path / "again") == 1
    assert "object-based (TF2) checkpoint" in capsys.readouterr().err


def test_existing_output_is_kept_unless_overwrite(source, tmp_path, capsys):
    checkpoint, config_file = source
    output_dir = tmp_path / "garden_bert"
    assert convert(checkpoint, config_file, output_dir) == 0
    before = sorted(os.listdir(output_dir))

    assert convert(checkpoint, config_file, output_dir) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert sorted(os.listdir(output_dir)) == before

    assert convert(checkpoint, config_file, output_dir, "--overwrite") == 0
    assert sorted(os.listdir(output_dir)) == before
    assert sorted(os.listdir(tmp_path)) == ["garden_bert"]

    (output_dir / "notes.txt").write_text("mine")
    assert convert(checkpoint, config_file, output_dir, "--overwrite") == 1
    assert "notes.txt" in capsys.readouterr().err
    assert (output_dir / "notes.txt").read_text() == "mine"


def test_failed_write_leaves_no_output_and_keeps_previous(source, tmp_path, monkeypatch, capsys):
    checkpoint, config_file = source
    write = tf.train.Checkpoint.write

    def write_then_fail(self, file_prefix, options=None):
        write(self, file_prefix, options=options)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "write", write_then_fail)
    assert convert(checkpoint, config_file, tmp_path / "new") == 1
    assert "No space left on device" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []

    monkeypatch.undo()
    previous = tmp_path / "previous"
    assert convert(checkpoint, config_file, previous) == 0
    stamp = {name: (previous / name).read_bytes() for name in os.listdir(previous)}
    monkeypatch.setattr(tf.train.Checkpoint, "write", write_then_fail)
    assert convert(checkpoint, config_file, previous, "--overwrite") == 1
    assert {name: (previous / name).read_bytes() for name in os.listdir(previous)} == stamp
    assert sorted(os.listdir(tmp_path)) == ["previous"]
