"""Tests of `garden-convert-hf-bert`: Hugging Face BERT safetensors into Garden's BERT.

Each test lays out tiny random BERT weights as Hugging Face's `save_pretrained` does
(`config.json`, `model.safetensors` or a sharded index, PyTorch `Linear` weights `[out, in]`),
converts them through the command's `main`, restores the output into a fresh encoder built
from the written `encoder_config.yaml`, and compares with the NumPy reference (which takes
the same weights in TF1 naming).
"""

from __future__ import annotations

import json
import os
import struct
import sys

import bert_numpy_reference as reference
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import save_file

from garden_nlp.configs.encoders import EncoderConfig
from garden_nlp.modeling.encoders import build_encoder
from garden_nlp.modeling.models import BertPretrainer
from garden_nlp.tools import hf_bert_converter
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
HF_CONFIG = {
    **BERT_CONFIG,
    "architectures": ["BertForPreTraining"],
    "model_type": "bert",
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "absolute",
    "pad_token_id": 0,
    "torch_dtype": "float32",
    "transformers_version": "4.44.0",
}
MASK = np.array([[1] * 8, [1] * 5 + [0] * 3], np.int32)


def hf_tensors(
    weights: dict[str, np.ndarray], prefix: str = "", old_norm_names: bool = False
) -> dict[str, np.ndarray]:
    """TF1-named BERT weights in Hugging Face names and PyTorch layouts."""
    hf = {}
    for name, value in weights.items():
        scope, _, leaf = name.rpartition("/")
        if name.startswith("cls/seq_relationship/"):
            key = "cls.seq_relationship." + ("weight" if leaf == "output_weights" else "bias")
        elif name == "cls/predictions/output_bias":
            key = "cls.predictions.bias"
        elif leaf in ("gamma", "beta"):
            if not old_norm_names:
                leaf = "weight" if leaf == "gamma" else "bias"
            key = scope.replace("/", ".") + "." + leaf
        elif leaf == "kernel":
            key, value = scope.replace("/", ".") + ".weight", value.T
        elif leaf == "bias":
            key = scope.replace("/", ".") + ".bias"
        else:  # embedding tables
            key = name.replace("/", ".") + ".weight"
        key = key.replace("bert.encoder.layer_", "bert.encoder.layer.")
        if key.startswith("bert."):
            key = prefix + key[len("bert.") :]
        hf[key] = np.ascontiguousarray(value)
    return hf


def write_model_dir(path, tensors, config=None, shards: int = 1):
    """Writes `config.json` and the tensors as `model.safetensors` or `shards` shards."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or HF_CONFIG))
    if shards == 1:
        save_file(tensors, str(path / "model.safetensors"))
        return path
    names = sorted(tensors)
    weight_map = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = names[i::shards]
        save_file({n: tensors[n] for n in part}, str(path / file))
        weight_map.update(dict.fromkeys(part, file))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))
    return path


@pytest.fixture(scope="module")
def weights():
    return reference.random_weights(BERT_CONFIG, seed=5, heads=True)


def inputs():
    rng = np.random.default_rng(11)
    ids = rng.integers(1, BERT_CONFIG["vocab_size"], MASK.shape).astype(np.int32) * MASK
    types = np.array([[0, 0, 0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 0, 0, 0, 0]], np.int32)
    return {"input_word_ids": ids, "input_mask": MASK, "input_type_ids": types}


def convert(model_dir, output_dir, *flags):
    return hf_bert_converter.main(
        [f"--model_dir={model_dir}", f"--output_dir={output_dir}", *flags]
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


def encoder_outputs(output_dir):
    encoder = restored_encoder(str(output_dir))
    tf.train.Checkpoint(encoder=encoder).read(str(output_dir / "bert_model.ckpt")).assert_consumed()
    return encoder({k: tf.constant(v) for k, v in inputs().items()}, training=False)


def test_bert_model_layout_matches_reference(tmp_path, weights, capsys):
    encoder_weights = {k: v for k, v in weights.items() if not k.startswith("cls/")}
    tensors = hf_tensors(encoder_weights)
    tensors["embeddings.position_ids"] = np.arange(16, dtype=np.int64)[None]
    model_dir = write_model_dir(tmp_path / "bert-tiny", tensors)

    assert convert(model_dir, tmp_path / "garden") == 0
    assert "converted 39 tensors" in capsys.readouterr().out
    config = EncoderConfig.from_yaml(str(tmp_path / "garden" / ENCODER_CONFIG_FILE))
    assert config.type == "bert"
    assert config.bert.hidden_size == 24
    assert_encoder_matches(encoder_outputs(tmp_path / "garden"), weights)


def test_pretraining_heads_match_reference(tmp_path, weights, capsys):
    tensors = hf_tensors(weights, prefix="bert.")
    # `save_pretrained` keeps one of the tied pair; a file with both must agree.
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    model_dir = write_model_dir(tmp_path / "bert-pretraining", tensors)
    output_dir = tmp_path / "garden"

    assert convert(model_dir, output_dir, "--include_pretraining_heads") == 0
    assert "masked_lm, next_sentence" in capsys.readouterr().out
    encoder = restored_encoder(str(output_dir))
    pretrainer = BertPretrainer(encoder_network=encoder)  # with its default next_sentence head
    positions = np.array([[0, 2, 7], [1, 3, 4]], np.int32)
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


def test_heads_are_left_out_without_the_flag(tmp_path, weights, capsys):
    model_dir = write_model_dir(tmp_path / "bert", hf_tensors(weights, prefix="bert."))

    assert convert(model_dir, tmp_path / "garden") == 0
    assert "ignored 7 pretraining-head tensors" in capsys.readouterr().out
    names = [n for n, _ in tf.train.list_variables(str(tmp_path / "garden" / "bert_model.ckpt"))]
    assert not [n for n in names if n.startswith(("masked_lm", "next_sentence"))]
    assert_encoder_matches(encoder_outputs(tmp_path / "garden"), weights)


def test_sharded_float16_with_old_layer_norm_names(tmp_path, weights):
    encoder_weights = {k: v for k, v in weights.items() if not k.startswith("cls/")}
    half = {k: v.astype(np.float16) for k, v in encoder_weights.items()}
    tensors = hf_tensors(half, prefix="bert.", old_norm_names=True)
    model_dir = write_model_dir(tmp_path / "sharded", tensors, shards=3)

    assert convert(model_dir, tmp_path / "garden") == 0
    widened = {k: v.astype(np.float32) for k, v in half.items()}
    assert_encoder_matches(encoder_outputs(tmp_path / "garden"), widened)


def test_bfloat16_tensors_are_widened(tmp_path):
    values = np.array([[1.5, -2.25, 3.0], [0.5, 96.0, -0.125]], np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, len(raw)]}})
    header = header.encode() + b" " * (-len(header) % 8)
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + raw)

    source = hf_bert_converter.read_safetensors(str(tmp_path))
    assert source.shape("w") == (2, 3)
    np.testing.assert_array_equal(source.read("w"), values)


def test_missing_tensor_is_named_and_nothing_is_written(tmp_path, weights, capsys):
    tensors = hf_tensors(weights, prefix="bert.")
    del tensors["bert.encoder.layer.1.attention.output.dense.weight"]
    model_dir = write_model_dir(tmp_path / "bert", tensors)
    output_dir = tmp_path / "out" / "garden"

    assert convert(model_dir, output_dir) == 1
    assert "bert.encoder.layer.1.attention.output.dense.weight" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_shape_mismatch_names_source_and_garden_variable(tmp_path, weights, capsys):
    model_dir = write_model_dir(
        tmp_path / "bert", hf_tensors(weights), config={**HF_CONFIG, "max_position_embeddings": 32}
    )

    assert convert(model_dir, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "`embeddings.position_embeddings.weight` has shape [16, 24]" in err
    assert "needs [32, 24]" in err
    assert "position_embedding" in err.split("Garden variable")[1]
    assert not (tmp_path / "out").exists()


def test_unknown_tensors_are_listed(tmp_path, weights, capsys):
    tensors = hf_tensors(weights, prefix="bert.")
    tensors["classifier.weight"] = np.zeros((3, 24), np.float32)
    model_dir = write_model_dir(tmp_path / "bert", tensors)

    assert convert(model_dir, tmp_path / "out") == 1
    assert "does not use: classifier.weight;" in capsys.readouterr().err


def test_untied_decoder_is_refused(tmp_path, weights, capsys):
    tensors = hf_tensors(weights, prefix="bert.")
    tensors["cls.predictions.decoder.weight"] = (
        tensors["bert.embeddings.word_embeddings.weight"] + 1
    )
    model_dir = write_model_dir(tmp_path / "bert", tensors)

    assert convert(model_dir, tmp_path / "out", "--include_pretraining_heads") == 1
    assert "`cls.predictions.decoder.weight` differs from" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "roberta"}, "`model_type` = 'roberta' is not supported"),
        ({"layer_norm_eps": 1e-5}, "`layer_norm_eps` = 1e-05 is not supported"),
        ({"hidden_act": "gelu_new"}, "`hidden_act` = 'gelu_new' is not supported"),
        ({"position_embedding_type": "relative_key"}, "'relative_key' is not supported"),
        ({"is_decoder": True}, "`is_decoder` = true is not supported"),
    ],
)
def test_bad_config_is_refused(tmp_path, weights, capsys, change, message):
    model_dir = write_model_dir(tmp_path / "bert", {}, config={**HF_CONFIG, **change})

    assert convert(model_dir, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert message in err
    assert "config.json" in err


def test_pytorch_only_folder_gets_a_hint(tmp_path, capsys):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps(HF_CONFIG))
    (tmp_path / "bert" / "pytorch_model.bin").write_bytes(b"")

    assert convert(tmp_path / "bert", tmp_path / "out") == 1
    assert "safe_serialization=True" in capsys.readouterr().err


def test_missing_safetensors_package_names_the_extra(tmp_path, monkeypatch, capsys):
    model_dir = write_model_dir(tmp_path / "bert", {})
    monkeypatch.setitem(sys.modules, "safetensors", None)

    assert convert(model_dir, tmp_path / "out") == 1
    assert "pip install 'garden-nlp[huggingface]'" in capsys.readouterr().err


def test_missing_shard_is_named(tmp_path, weights, capsys):
    model_dir = write_model_dir(tmp_path / "sharded", hf_tensors(weights), shards=2)
    os.remove(model_dir / "model-00002-of-00002.safetensors")

    assert convert(model_dir, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "model-00002-of-00002.safetensors" in err
    assert "does not exist" in err
