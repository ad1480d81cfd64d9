"""`MaskedLMTask` end to end: pretraining from static-mask TFRecords and from raw text with
dynamic masks, its metrics, export, and fine-tuning a classifier from the pretrained run."""

from __future__ import annotations

import json

import nlp_runs
import numpy as np
import pytest
import tensorflow as tf

from garden_core import experiment_factory, task_factory
from garden_nlp.data import tfrecord_lib

WORDS = [f"w{i}" for i in range(24)]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
SEQ_LENGTH = 16
MAX_PREDICTIONS = 3
ENCODER = {
    "type": "bert",
    "bert": {
        "vocab_size": len(VOCAB),
        "hidden_size": 16,
        "num_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": SEQ_LENGTH,
        "type_vocab_size": 2,
    },
}
MODEL = {
    "encoder": ENCODER,
    "cls_heads": [{"inner_dim": 16, "num_classes": 2, "name": "next_sentence"}],
}
TRAINER = {
    "train_steps": 40,
    "steps_per_loop": 20,
    "summary_interval": 20,
    "checkpoint_interval": 20,
    "validation_interval": 40,
    "validation_steps": 2,
    "optimizer_config": {
        "optimizer": {"type": "adamw", "adamw": {"weight_decay_rate": 0.01}},
        "learning_rate": {"type": "constant", "constant": {"learning_rate": 5e-3}},
        "warmup": {"type": None},
    },
}
RUNTIME = {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1}


def pretraining_records(count: int, seed: int) -> list[dict]:
    """Counting sequences `w_k w_k+1 ...` with 3 masked positions, and NSP labels that say
    whether segment B continues segment A."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(count):
        start = int(rng.integers(0, 10))
        is_random = int(rng.integers(2))
        a = list(range(start, start + 6))
        b = list(range(start + 6, start + 12)) if not is_random else list(rng.integers(0, 24, 6))
        ids = [2, *(5 + w for w in a), 3, *(5 + int(w) for w in b), 3, 0]  # One padding.
        positions = sorted(rng.choice(np.arange(1, 14), MAX_PREDICTIONS, replace=False).tolist())
        labels = [ids[p] for p in positions]
        for p in positions:
            ids[p] = 4
        records.append(
            {
                "input_ids": ids,
                "input_mask": [1] * (SEQ_LENGTH - 1) + [0],
                "segment_ids": [0] * 8 + [1] * 7 + [0],
                "masked_lm_positions": positions,
                "masked_lm_ids": labels,
                "masked_lm_weights": [1.0] * MAX_PREDICTIONS,
                "next_sentence_labels": [is_random],
            }
        )
    return records


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretraining")
    tfrecord_lib.write_examples(str(root / "train.tfrecord"), pretraining_records(128, 0))
    tfrecord_lib.write_examples(str(root / "validation.tfrecord"), pretraining_records(32, 1))
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    documents = []
    rng = np.random.default_rng(2)
    for _ in range(12):
        sentences = [" ".join(rng.choice(WORDS, 5)) for _ in range(4)]
        documents.append("\n".join(sentences))
    (root / "corpus.txt").write_text("\n\n".join(documents) + "\n")
    return root


def experiment(name: str, task: dict):
    params = experiment_factory.get_experiment_config(name)
    params.override(
        {"task": {"model": MODEL, **task}, "trainer": TRAINER, "runtime": RUNTIME},
    )
    params.validate()
    return params


def static_data(data_dir) -> dict:
    common = {
        "seq_length": SEQ_LENGTH,
        "max_predictions_per_seq": MAX_PREDICTIONS,
        "global_batch_size": 16,
    }
    return {
        "train_data": {**common, "input_path": str(data_dir / "train.tfrecord")},
        "validation_data": {**common, "input_path": str(data_dir / "validation.tfrecord")},
    }


@pytest.fixture(scope="module")
def pretrained(data_dir, tmp_path_factory):
    params = experiment("bert/pretraining", static_data(data_dir))
    params.runtime.enable_xla = False
    model_dir = tmp_path_factory.mktemp("pretrain_run")
    return params, model_dir, nlp_runs.run(params, model_dir)


def test_pretraining_from_tfrecords_learns_masked_tokens(pretrained):
    _, model_dir, logs = pretrained
    for key in ("masked_lm_accuracy", "lm_example_loss", "next_sentence_accuracy"):
        assert key in logs
    assert logs["masked_lm_accuracy"] > 1 / len(VOCAB) * 3  # Well above chance.
    with open(model_dir / "metrics.jsonl") as f:
        train = [json.loads(line) for line in f]
    losses = [r["metrics"]["training_loss"] for r in train if r["mode"] == "train"]
    assert losses[-1] < losses[0]


def test_the_loss_is_masked_lm_plus_next_sentence(pretrained):
    params, _, _ = pretrained
    task = task_factory.get_task(params.task)
    model = task.build_model()
    features, labels = next(iter(task.build_inputs(params.task.validation_data)))
    outputs = model(features, training=False)
    logits = outputs["mlm_logits"].numpy()
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    ids = labels["masked_lm_ids"].numpy()
    weights = labels["masked_lm_weights"].numpy()
    picked = np.take_along_axis(probabilities, ids[..., None], -1)[..., 0]
    mlm = np.sum(-np.log(picked) * weights) / np.sum(weights)
    nsp_logits = outputs["next_sentence"].numpy()
    nsp_probabilities = np.exp(nsp_logits) / np.exp(nsp_logits).sum(-1, keepdims=True)
    nsp_labels = labels["next_sentence_labels"].numpy().reshape(-1)
    nsp = np.mean(-np.log(nsp_probabilities[np.arange(len(nsp_labels)), nsp_labels]))
    loss = task.build_losses(labels, outputs)
    np.testing.assert_allclose(float(loss), mlm + nsp, rtol=1e-5)


def test_pretraining_from_raw_text_with_dynamic_masks(data_dir, tmp_path):
    common = {
        "input_path": str(data_dir / "corpus.txt"),
        "file_type": "txt",
        "vocab_file_path": str(data_dir / "vocab.txt"),
        "seq_length": SEQ_LENGTH,
        "max_predictions_per_seq": MAX_PREDICTIONS,
        "global_batch_size": 8,
        "doc_batch_size": 4,
    }
    no_tfds = {"tfds_name": "", "tfds_split": ""}
    params = experiment(
        "bert/text_wiki_pretraining",
        {
            "train_data": {**common, **no_tfds},
            "validation_data": {**common, **no_tfds, "is_training": False},
        },
    )
    task = task_factory.get_task(params.task)
    batches = iter(task.build_inputs(params.task.train_data))
    first_features, first_labels = next(batches)
    assert first_features["masked_lm_positions"].shape == (8, MAX_PREDICTIONS)
    assert set(np.unique(first_labels["next_sentence_labels"])) <= {0, 1}
    logs = nlp_runs.run(params, tmp_path)
    assert np.isfinite(logs["lm_example_loss"])


def test_a_classifier_fine_tunes_from_the_pretraining_run(pretrained, tmp_path):
    params, model_dir, _ = pretrained
    pretrainer = task_factory.get_task(params.task).build_model()
    tf.train.Checkpoint(model=pretrainer).read(tf.train.latest_checkpoint(model_dir))
    classifier_params = experiment_factory.get_experiment_config("bert/sentence_prediction")
    classifier_params.override(
        {
            "task": {
                "init_checkpoint": str(model_dir),
                "init_cls_pooler": True,
                "model": {"num_classes": 2, "encoder": ENCODER},
            }
        }
    )
    task = task_factory.get_task(classifier_params.task)
    classifier = task.build_model()
    task.initialize(classifier)
    for a, b in zip(pretrainer.encoder.weights, classifier.encoder.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    head = pretrainer.checkpoint_items["next_sentence"]
    np.testing.assert_array_equal(
        head.dense.kernel.numpy(), classifier.checkpoint_items["sentence_prediction"].dense.kernel
    )


def test_export_serves_masked_lm_logits(pretrained, tmp_path, capsys):
    params, model_dir, _ = pretrained
    status = nlp_runs.export(params, "bert/pretraining", model_dir, tmp_path)
    assert status == 0, capsys.readouterr().err
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    record = pretraining_records(2, 5)
    outputs = loaded.signatures["serving_default"](
        input_word_ids=tf.constant([r["input_ids"] for r in record], tf.int32),
        input_mask=tf.constant([r["input_mask"] for r in record], tf.int32),
        input_type_ids=tf.constant([r["segment_ids"] for r in record], tf.int32),
        masked_lm_positions=tf.constant([r["masked_lm_positions"] for r in record], tf.int32),
    )
    assert outputs["mlm_logits"].shape == (2, MAX_PREDICTIONS, len(VOCAB))
    assert outputs["next_sentence"].shape == (2, 2)
