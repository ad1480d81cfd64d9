"""`TaggingTask` end to end: CoNLL-style files to TFRecords, training with ignored word-piece
positions, token accuracy and span F1 after evaluation, and export."""

from __future__ import annotations

import nlp_runs
import numpy as np
import pytest
import tensorflow as tf

from garden_core import experiment_factory, task_factory
from garden_core.config import ConfigError
from garden_nlp.data import tagging_dataloader
from garden_nlp.data.tokenization import FullTokenizer

PEOPLE = ["anna", "bob", "carla", "dieter"]
PLACES = ["paris", "rome", "oslo", "lima"]
OTHER = ["met", "in", "went", "to", "and", "from", "saw"]
# "berlin" is split into pieces: its first piece is tagged, the second is ignored (-1).
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PEOPLE, *PLACES, *OTHER, "ber", "##lin"]
CLASS_NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SEQ_LENGTH = 12


def conll(count: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(count):
        words = []
        for _ in range(int(rng.integers(3, 7))):
            kind = rng.integers(3)
            if kind == 0:
                words.append((str(rng.choice(PEOPLE)), "B-PER"))
            elif kind == 1:
                words.append((str(rng.choice([*PLACES, "berlin"])), "B-LOC"))
            else:
                words.append((str(rng.choice(OTHER)), "O"))
        sentences.append("\n".join(f"{w}\t{t}" for w, t in words))
    return "\n\n".join(sentences) + "\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagging")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tokenizer = FullTokenizer(str(root / "vocab.txt"), True, "WordPiece")
    for split, count, seed in (("train", 160, 0), ("validation", 32, 1)):
        (root / f"{split}.conll").write_text(conll(count, seed))
        examples = tagging_dataloader.read_tagging_file(str(root / f"{split}.conll"), CLASS_NAMES)
        tagging_dataloader.write_tagging_tfrecord(
            examples, tokenizer, SEQ_LENGTH, str(root / f"{split}.tfrecord")
        )
    return root


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    params = experiment_factory.get_experiment_config("bert/tagging")
    common = {"seq_length": SEQ_LENGTH, "global_batch_size": 16}
    params.override(
        {
            "task": {
                "class_names": CLASS_NAMES,
                "model": {
                    "encoder": {
                        "type": "bert",
                        "bert": {
                            "vocab_size": len(VOCAB),
                            "hidden_size": 16,
                            "num_layers": 1,
                            "num_attention_heads": 2,
                            "intermediate_size": 32,
                            "max_position_embeddings": SEQ_LENGTH,
                        },
                    }
                },
                "train_data": {**common, "input_path": str(data_dir / "train.tfrecord")},
                "validation_data": {**common, "input_path": str(data_dir / "validation.tfrecord")},
            },
            "trainer": {
                "train_steps": 120,
                "steps_per_loop": 60,
                "summary_interval": 60,
                "checkpoint_interval": 120,
                "validation_interval": 120,
                "optimizer_config": {
                    "optimizer": {"type": "adamw", "adamw": {"weight_decay_rate": 0.01}},
                    "learning_rate": {"type": "constant", "constant": {"learning_rate": 5e-3}},
                    "warmup": {"type": None},
                },
            },
            "runtime": {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1},
        }
    )
    params.validate()
    model_dir = tmp_path_factory.mktemp("tagging_run")
    return params, model_dir, nlp_runs.run(params, model_dir)


def test_training_tags_people_and_places(trained):
    _, _, logs = trained
    assert logs["accuracy"] > 0.95
    assert logs["f1"] > 0.9
    assert 0 < logs["precision"] <= 1
    assert 0 < logs["recall"] <= 1


def test_the_loss_ignores_positions_labelled_minus_one(trained):
    params, _, _ = trained
    task = task_factory.get_task(params.task)
    logits = tf.constant(np.random.default_rng(0).normal(size=(1, 3, 5)), tf.float32)
    labels = tf.constant([[1, -1, 3]])
    changed = tf.tensor_scatter_nd_update(logits, [[0, 1, 0]], [100.0])  # An ignored position.
    np.testing.assert_allclose(
        float(task.build_losses(labels, logits)), float(task.build_losses(labels, changed))
    )
    probabilities = tf.nn.softmax(logits).numpy()[0]
    expected = -(np.log(probabilities[0, 1]) + np.log(probabilities[2, 3])) / 2
    np.testing.assert_allclose(float(task.build_losses(labels, logits)), expected, rtol=1e-5)


def test_export_serves_tag_ids(trained, tmp_path, capsys):
    params, model_dir, _ = trained
    status = nlp_runs.export(params, "bert/tagging", model_dir, tmp_path)
    assert status == 0, capsys.readouterr().err
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    words = ["[CLS]", "anna", "went", "to", "rome", "[SEP]"]
    ids = tf.constant([[VOCAB.index(w) for w in words]], tf.int32)
    outputs = loaded.signatures["serving_default"](
        input_word_ids=ids, input_mask=tf.ones_like(ids), input_type_ids=tf.zeros_like(ids)
    )
    tags = [CLASS_NAMES[i] for i in outputs["predictions"].numpy()[0][1:-1]]
    assert tags == ["B-PER", "O", "O", "B-LOC"]


def test_class_names_are_required():
    params = experiment_factory.get_experiment_config("bert/tagging")
    with pytest.raises(ConfigError, match="task.class_names"):
        task_factory.get_task(params.task)
