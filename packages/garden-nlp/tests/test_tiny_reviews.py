"""The `bert/tiny_reviews` experiment, as a user runs it: `garden train` on the generated
`garden_reviews` data, then `garden export` with the tokenizer inside the SavedModel."""

from __future__ import annotations

import json
import random

import pytest
import tensorflow as tf

from garden_core import cli
from garden_nlp.datasets import reviews


def test_the_dataset_is_balanced_deterministic_and_needs_the_negation():
    train = reviews.examples("train")
    assert train == reviews.examples("train")
    assert len(train) == reviews.TRAIN_EXAMPLES
    assert abs(sum(label for _, label in train) / len(train) - 0.5) < 0.03
    # The same adjective carries either label, depending on its negation.
    with_good = {label for sentence, label in train if sentence.split()[-1] == "good"}
    assert with_good == {0, 1}
    vocabulary = set(reviews.vocabulary())
    assert all(word in vocabulary for sentence, _ in train for word in sentence.split())
    with pytest.raises(ValueError, match="no split 'test'"):
        reviews.examples("test")


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_prepare_writes_once_and_atomically(tmp_path):
    files = reviews.prepare(str(tmp_path / "reviews"))
    lines = read(files["train"]).splitlines()
    assert lines[0] == "sentence\tlabel"
    assert len(lines) == reviews.TRAIN_EXAMPLES + 1
    before = {name: read(path) for name, path in files.items()}
    assert reviews.prepare(str(tmp_path / "reviews")) == files
    assert {name: read(path) for name, path in files.items()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["reviews"]  # No staging left behind.


def test_garden_train_learns_the_reviews_and_the_export_reads_raw_text(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GARDEN_DATA_DIR", str(tmp_path / "data"))
    model_dir = tmp_path / "run"
    status = cli.main(
        ["train", "--experiment", "bert/tiny_reviews", "--mode", "train_and_eval"]
        + ["--model_dir", str(model_dir)]
    )
    assert status == 0, capsys.readouterr().err
    with open(model_dir / "metrics.jsonl") as f:
        evaluations = [json.loads(line) for line in f if '"eval"' in line]
    assert evaluations[-1]["metrics"]["cls_accuracy"] > 0.9  # Chance is 0.5.

    export_dir = tmp_path / "export"
    status = cli.main(
        ["export", "--experiment", "bert/tiny_reviews", "--checkpoint_path", str(model_dir)]
        + ["--export_dir", str(export_dir), "--input_type", "serve_text"]
    )
    assert status == 0, capsys.readouterr().err
    served = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    examples = reviews.examples("validation")
    random.Random(0).shuffle(examples)
    sentences = [s for s, _ in examples[:64]]
    predictions = served(sentence=tf.constant(sentences))["predictions"].numpy()
    correct = sum(int(p == label) for p, (_, label) in zip(predictions, examples[:64], strict=True))
    assert correct / 64 > 0.9
    negated = served(sentence=tf.constant(["the food was good", "the food was not good"]))
    assert negated["predictions"].numpy().tolist() == [1, 0]
