"""`QuestionAnsweringTask` end to end on a tiny generated SQuAD: training features from
JSON, evaluation that maps logits back to answer text and scores exact match and F1."""

from __future__ import annotations

import json

import nlp_runs
import numpy as np
import pytest
import tensorflow as tf

from garden_core import experiment_factory
from garden_nlp.data import squad_lib

COLOURS = ["red", "blue", "green", "black", "white", "pink"]
THINGS = ["car", "house", "door", "hat", "boat", "kite"]
OTHER = ["the", "is", "what", "colour", "of", "a", "and", "?", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *COLOURS, *THINGS, *OTHER]
SEQ_LENGTH = 24


def squad(count: int, seed: int) -> dict:
    """Contexts of a few things and one colour at a random place; the answer is the colour
    as the context writes it (lower case or capitalized)."""
    rng = np.random.default_rng(seed)
    paragraphs = []
    for i in range(count):
        words = [str(w) for w in rng.choice(THINGS + ["the", "and", "a"], int(rng.integers(4, 9)))]
        answer = str(rng.choice(COLOURS))
        if rng.random() < 0.5:  # Predictions map back to the original text, with its case.
            answer = answer.capitalize()
        words.insert(int(rng.integers(len(words) + 1)), answer)
        context = " ".join(words) + " ."
        start = len(" ".join(words[: words.index(answer)])) + (1 if words.index(answer) else 0)
        thing = str(rng.choice(THINGS))
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"q{seed}-{i}",
                        "question": f"what is the colour of the {thing} ?",
                        "answers": [{"text": answer, "answer_start": start}],
                    }
                ],
            }
        )
    return {"version": "1.1", "data": [{"title": "colours", "paragraphs": paragraphs}]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    for split, count, seed in (("train", 320, 0), ("dev", 24, 1)):
        (root / f"{split}.json").write_text(json.dumps(squad(count, seed)))
    squad_lib.generate_tf_record_from_json_file(
        str(root / "train.json"),
        str(root / "vocab.txt"),
        str(root / "train.tfrecord"),
        max_seq_length=SEQ_LENGTH,
        max_query_length=12,
        doc_stride=8,
    )
    return root


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    params = experiment_factory.get_experiment_config("bert/squad")
    common = {"seq_length": SEQ_LENGTH, "global_batch_size": 16}
    params.override(
        {
            "task": {
                "model": {
                    "encoder": {
                        "type": "bert",
                        "bert": {
                            "vocab_size": len(VOCAB),
                            "hidden_size": 32,
                            "num_layers": 2,
                            "num_attention_heads": 2,
                            "intermediate_size": 64,
                            "max_position_embeddings": SEQ_LENGTH,
                            "type_vocab_size": 2,
                            "dropout_rate": 0.0,
                            "attention_dropout_rate": 0.0,
                        },
                    }
                },
                "train_data": {**common, "input_path": str(data_dir / "train.tfrecord")},
                "validation_data": {
                    **common,
                    "input_path": str(data_dir / "dev.json"),
                    "vocab_file": str(data_dir / "vocab.txt"),
                    "query_length": 12,
                    "doc_stride": 8,
                    "drop_remainder": False,
                },
            },
            "trainer": {
                "train_steps": 200,
                "steps_per_loop": 100,
                "summary_interval": 100,
                "checkpoint_interval": 200,
                "validation_interval": 200,
                "optimizer_config": {
                    "optimizer": {"type": "adamw", "adamw": {"weight_decay_rate": 0.01}},
                    "learning_rate": {"type": "constant", "constant": {"learning_rate": 3e-3}},
                    "warmup": {"type": None},
                },
            },
            "runtime": {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1},
        }
    )
    params.validate()
    model_dir = tmp_path_factory.mktemp("squad_run")
    return params, model_dir, nlp_runs.run(params, model_dir)


def test_training_learns_to_point_at_the_answer(trained, data_dir):
    _, model_dir, logs = trained
    assert logs["exact_match"] > 0.9
    assert logs["final_f1"] >= logs["exact_match"]
    predictions = json.loads((model_dir / "predictions.json").read_text())
    dev = squad(24, 1)
    assert set(predictions) == {qa["id"] for p in dev["data"][0]["paragraphs"] for qa in p["qas"]}
    answers = {
        qa["id"]: qa["answers"][0]["text"] for p in dev["data"][0]["paragraphs"] for qa in p["qas"]
    }
    assert np.mean([predictions[q] == a for q, a in answers.items()]) == logs["exact_match"]
    assert (model_dir / "eval_features.tf_record").exists()


def test_export_serves_start_and_end_logits(trained, tmp_path, capsys):
    params, model_dir, _ = trained
    status = nlp_runs.export(params, "bert/squad", model_dir, tmp_path)
    assert status == 0, capsys.readouterr().err
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    ids = tf.constant([[2, 5, 3, 6, 3, 0]], tf.int32)
    outputs = loaded.signatures["serving_default"](
        input_word_ids=ids,
        input_mask=tf.cast(ids != 0, tf.int32),
        input_type_ids=tf.constant([[0, 0, 0, 1, 1, 0]], tf.int32),
    )
    assert outputs["start_logits"].shape == (1, 6)
    assert outputs["end_logits"].dtype == tf.float32
