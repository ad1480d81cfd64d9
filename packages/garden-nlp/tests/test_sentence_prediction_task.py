"""`SentencePredictionTask` end to end: TFRecord and raw-text data, classification and
regression metrics, pretrained-encoder initialization and export (token ids and raw text)."""

from __future__ import annotations

import json

import nlp_runs
import numpy as np
import pytest
import tensorflow as tf

from garden_core import experiment_factory, task_factory
from garden_core.config import ConfigError
from garden_nlp.data import tfrecord_lib

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "film", "was", "not"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
SEQ_LENGTH = 8
TINY_ENCODER = {
    "type": "bert",
    "bert": {
        "vocab_size": len(VOCAB),
        "hidden_size": 16,
        "num_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 16,
        "type_vocab_size": 2,
    },
}


def sentences(count: int, seed: int) -> list[tuple[str, int]]:
    """Sentences 'the film was [not] ADJ' labelled by their sentiment."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        positive = bool(rng.integers(2))
        adjective = rng.choice(WORDS[:3] if positive else WORDS[3:6])
        out.append((f"the film was {adjective}", int(positive)))
    return out


def token_ids(sentence: str) -> list[int]:
    ids = [VOCAB.index("[CLS]"), *(VOCAB.index(w) for w in sentence.split()), VOCAB.index("[SEP]")]
    return ids + [0] * (SEQ_LENGTH - len(ids))


def write_tfrecord(path, examples, regression=False) -> str:
    records = []
    for sentence, label in examples:
        ids = token_ids(sentence)
        records.append(
            {
                "input_ids": ids,
                "input_mask": [int(i != 0) for i in ids],
                "segment_ids": [0] * SEQ_LENGTH,
                "label_ids": [float(label) * 5.0] if regression else [label],
            }
        )
    tfrecord_lib.write_examples(str(path), records)
    return str(path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentences")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    for split, seed in (("train", 0), ("validation", 1)):
        examples = sentences(96 if split == "train" else 32, seed)
        write_tfrecord(root / f"{split}.tfrecord", examples)
        write_tfrecord(root / f"{split}_regression.tfrecord", examples, regression=True)
        lines = ["sentence\tlabel"] + [f"{s}\t{label}" for s, label in examples]
        (root / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


def trainer(steps: int = 60) -> dict:
    return {
        "train_steps": steps,
        "steps_per_loop": steps // 2,
        "summary_interval": steps // 2,
        "checkpoint_interval": steps // 2,
        "validation_interval": steps,
        "optimizer_config": {
            "optimizer": {"type": "adamw", "adamw": {"weight_decay_rate": 0.01}},
            "learning_rate": {"type": "constant", "constant": {"learning_rate": 3e-3}},
            "warmup": {"type": None},
        },
    }


def experiment(name: str, task: dict, steps: int = 60):
    params = experiment_factory.get_experiment_config(name)
    params.override(
        {
            "task": {"model": {"encoder": TINY_ENCODER}, **task},
            "trainer": trainer(steps),
            "runtime": {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1},
        }
    )
    params.validate()
    return params


def tfrecord_data(data_dir, suffix="", **extra):
    common = {"seq_length": SEQ_LENGTH, "global_batch_size": 16, **extra}
    return {
        "train_data": {**common, "input_path": str(data_dir / f"train{suffix}.tfrecord")},
        "validation_data": {**common, "input_path": str(data_dir / f"validation{suffix}.tfrecord")},
    }


def text_data(data_dir):
    common = {
        "seq_length": SEQ_LENGTH,
        "global_batch_size": 16,
        "file_type": "tsv",
        "text_fields": ["sentence"],
        "label_field": "label",
        "vocab_file": str(data_dir / "vocab.txt"),
    }
    return {
        "train_data": {**common, "input_path": str(data_dir / "train.tsv"), "seed": 1},
        "validation_data": {**common, "input_path": str(data_dir / "validation.tsv")},
    }


@pytest.fixture(scope="module")
def trained_text(data_dir, tmp_path_factory):
    """A tiny BERT trained from raw TSV text: (params, model_dir, logs)."""
    params = experiment(
        "bert/sentence_prediction_text",
        {"model": {"num_classes": 2, "encoder": TINY_ENCODER}, **text_data(data_dir)},
    )
    model_dir = tmp_path_factory.mktemp("text_run")
    return params, model_dir, nlp_runs.run(params, model_dir)


def test_training_from_raw_text_learns_the_labels(trained_text):
    _, model_dir, logs = trained_text
    assert logs["cls_accuracy"] > 0.9
    assert 0 <= logs["auc"] <= 1
    with open(model_dir / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    train = [r["metrics"]["training_loss"] for r in records if r["mode"] == "train"]
    assert train[-1] < train[0]


def test_tfrecords_with_matthews_correlation(data_dir, tmp_path):
    params = experiment(
        "bert/sentence_prediction",
        {
            "model": {"num_classes": 2, "encoder": TINY_ENCODER},
            "metric_type": "matthews_corrcoef",
            **tfrecord_data(data_dir),
        },
    )
    logs = nlp_runs.run(params, tmp_path)
    assert logs["matthews_corrcoef"] > 0.8
    assert logs["cls_accuracy"] > 0.9


def test_regression_reports_pearson_spearman(data_dir, tmp_path):
    params = experiment(
        "bert/sentence_prediction",
        {
            "model": {"num_classes": 1, "encoder": TINY_ENCODER},
            "metric_type": "pearson_spearman_corr",
            **tfrecord_data(data_dir, "_regression", label_type="float"),
        },
    )
    logs = nlp_runs.run(params, tmp_path)
    assert logs["pearson_spearman_corr"] > 0.8
    assert "mean_squared_error" in logs


def test_fine_tuning_starts_from_a_pretrained_encoder(trained_text, data_dir, tmp_path):
    params, model_dir, _ = trained_text
    task = task_factory.get_task(params.task)
    trained = task.build_model()
    tf.train.Checkpoint(model=trained).read(tf.train.latest_checkpoint(model_dir)).expect_partial()
    encoder_only = tf.train.Checkpoint(encoder=trained.checkpoint_items["encoder"])
    prefix = encoder_only.write(str(tmp_path / "encoder" / "ckpt"))

    for source in (prefix, str(model_dir)):  # A bare encoder checkpoint, or a training run.
        params.task.init_checkpoint = source
        fresh_task = task_factory.get_task(params.task)
        fresh = fresh_task.build_model()
        fresh_task.initialize(fresh)
        for a, b in zip(
            trained.checkpoint_items["encoder"].weights,
            fresh.checkpoint_items["encoder"].weights,
            strict=True,
        ):
            np.testing.assert_array_equal(a.numpy(), b.numpy())

    params.task.init_checkpoint = str(tmp_path / "missing")
    broken = task_factory.get_task(params.task)
    model = broken.build_model()
    with pytest.raises(FileNotFoundError, match="task.init_checkpoint"):
        broken.initialize(model)


def test_export_serves_token_ids_and_raw_text(trained_text, data_dir, tmp_path, capsys):
    params, model_dir, _ = trained_text
    export_dir = tmp_path / "export"
    status = nlp_runs.export(
        params, "bert/sentence_prediction_text", model_dir, tmp_path, "serve_text,serve"
    )
    assert status == 0, capsys.readouterr().err
    (data_dir / "vocab.txt").rename(data_dir / "vocab.moved")  # Serving must not read it.
    try:
        loaded = tf.saved_model.load(str(export_dir))
        assert set(loaded.signatures) == {"serving_default", "serve"}
        examples = sentences(8, seed=7)
        texts = tf.constant([s for s, _ in examples])
        from_text = loaded.signatures["serving_default"](sentence=texts)
        ids = np.array([token_ids(s) for s, _ in examples], np.int32)
        from_ids = loaded.signatures["serve"](
            input_word_ids=tf.constant(ids),
            input_mask=tf.constant((ids != 0).astype(np.int32)),
            input_type_ids=tf.zeros_like(ids),
        )
    finally:
        (data_dir / "vocab.moved").rename(data_dir / "vocab.txt")
    np.testing.assert_allclose(from_text["outputs"], from_ids["outputs"], atol=1e-5)
    np.testing.assert_allclose(np.sum(from_text["probabilities"], -1), 1.0, atol=1e-5)
    assert from_text["predictions"].dtype == tf.int32
    assert np.mean(from_text["predictions"].numpy() == [label for _, label in examples]) > 0.8

    # The served logits are the checkpoint's.
    task = task_factory.get_task(params.task)
    model = task.build_model()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(model_dir)).expect_partial()
    features = {
        "input_word_ids": tf.constant(ids),
        "input_mask": tf.constant((ids != 0).astype(np.int32)),
        "input_type_ids": tf.zeros_like(ids),
    }
    np.testing.assert_allclose(model(features, training=False), from_ids["outputs"], atol=1e-5)


def test_serve_text_without_a_vocabulary_is_a_clear_error(data_dir, tmp_path, capsys):
    params = experiment(
        "bert/sentence_prediction",
        {"model": {"num_classes": 2, "encoder": TINY_ENCODER}, **tfrecord_data(data_dir)},
        steps=2,
    )
    nlp_runs.run(params, tmp_path / "run", mode="train")
    status = nlp_runs.export(
        params, "bert/sentence_prediction", tmp_path / "run", tmp_path, "serve_text"
    )
    assert status != 0
    assert "vocab_file" in capsys.readouterr().err
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"metric_type": "bleu"}, "task.metric_type"),
        ({"model": {"num_classes": 0}}, "task.model.num_classes"),
        ({"model": {"num_classes": 1}, "metric_type": "matthews_corrcoef"}, "regression"),
    ],
)
def test_bad_task_configs_name_the_field(task, message):
    params = experiment_factory.get_experiment_config("bert/sentence_prediction")
    params.override({"task": {"model": {"num_classes": 2}}})
    params.override({"task": task})
    with pytest.raises(ConfigError, match=message):
        task_factory.get_task(params.task)


def test_the_experiments_load_with_model_garden_defaults():
    params = experiment_factory.get_experiment_config("bert/sentence_prediction")
    assert params.task.train_data.seq_length == 128
    assert params.task.validation_data.is_training is False
    optimizer = params.trainer.optimizer_config
    assert optimizer.optimizer.type == "adamw"
    assert optimizer.learning_rate.polynomial.initial_learning_rate == 3e-5
    assert experiment_factory.get_experiment_config("bert/squad").task.train_data.seq_length == 384
    pretraining = experiment_factory.get_experiment_config("bert/pretraining")
    assert pretraining.trainer.train_steps == 1000000
    assert pretraining.task.model.cls_heads[0].name == "next_sentence"


def test_the_readme_fine_tuning_config_loads(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("cat > sst2.yaml <<'EOF'\n")[1].split("\nEOF\n")[0]
    (tmp_path / "sst2.yaml").write_text(block)
    params = experiment_factory.get_experiment_config("bert/sentence_prediction_text")
    from garden_core.config import read_overrides

    params.override(read_overrides(str(tmp_path / "sst2.yaml")))
    params.validate()
    assert params.task.validation_data.file_type == "tsv"
    assert params.task.validation_data.is_training is False
    assert params.task.train_data.text_fields == ["sentence"]
    assert params.task.model.encoder.bert.vocab_size == 30522
    assert params.trainer.optimizer_config.warmup.polynomial.warmup_steps == 600


@pytest.mark.parametrize("use_encoder_pooler", [True, False])
def test_the_encoder_pooler_trains_only_when_the_classifier_uses_it(use_encoder_pooler):
    params = experiment_factory.get_experiment_config("bert/sentence_prediction")
    params.override(
        {
            "task": {
                "model": {
                    "num_classes": 2,
                    "encoder": TINY_ENCODER,
                    "use_encoder_pooler": use_encoder_pooler,
                }
            }
        }
    )
    model = task_factory.get_task(params.task).build_model()
    pooler = model.checkpoint_items["encoder"].pooler_layer.kernel
    trainable = {id(v) for v in model.trainable_variables}
    assert (id(pooler) in trainable) == use_encoder_pooler
    assert id(pooler) in {id(v) for v in model.weights}  # Still checkpointed.
