"""Sentence-prediction input pipelines: TFRecord features, and TSV / CSV / TFRecord text."""

from __future__ import annotations

import numpy as np
import pytest
import sentencepiece
import tensorflow as tf

from garden_core.config import ConfigError
from garden_nlp.configs.data import SentencePredictionDataConfig, SentencePredictionTextDataConfig
from garden_nlp.data import tfrecord_lib
from garden_nlp.data.sentence_prediction_dataloader import (
    # The sentencepiece extra is in every test install (noxfile.py TEST_EXTRAS), so it is imported
    # plainly: a missing or broken install fails instead of skipping the tests that need it.
    SentencePredictionDataLoader,
    SentencePredictionTextDataLoader,
)

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "big", "red", "hello", "world"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ",", "!"]
CLS, SEP = 2, 3
SEQ_LENGTH = 10


def ids(text: str) -> list[int]:
    return [VOCAB.index(w) for w in text.split()]


@pytest.fixture
def vocab_file(tmp_path) -> str:
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{token}\n" for token in VOCAB))
    return str(path)


def first_batch(loader) -> tuple[dict[str, np.ndarray], np.ndarray]:
    features, labels = next(iter(loader.load()))
    return {k: v.numpy() for k, v in features.items()}, tf.nest.map_structure(np.asarray, labels)


def test_tfrecord_features_are_renamed_and_labels_split_off(tmp_path):
    path = str(tmp_path / "train.tfrecord")
    records = []
    for i in range(3):
        word_ids = [CLS, 5 + i, SEP] + [0] * (SEQ_LENGTH - 3)
        records.append(
            {
                "input_ids": word_ids,
                "input_mask": [1, 1, 1] + [0] * (SEQ_LENGTH - 3),
                "segment_ids": [0] * SEQ_LENGTH,
                "label_ids": i % 2,
                "example_id": 100 + i,
            }
        )
    assert tfrecord_lib.write_examples(path, records) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    params = SentencePredictionDataConfig(
        input_path=path,
        global_batch_size=3,
        is_training=False,
        seq_length=SEQ_LENGTH,
        include_example_id=True,
        label_name=("label_ids", "next_sentence_labels"),
    )
    features, labels = first_batch(SentencePredictionDataLoader(params))
    assert set(features) == {
        "input_word_ids",
        "input_mask",
        "input_type_ids",
        "example_id",
        "next_sentence_labels",
    }
    assert features["input_word_ids"].dtype == np.int32
    np.testing.assert_array_equal(features["input_word_ids"][:, 1], [5, 6, 7])
    np.testing.assert_array_equal(features["example_id"], [100, 101, 102])
    np.testing.assert_array_equal(labels, [0, 1, 0])
    np.testing.assert_array_equal(features["next_sentence_labels"], labels)
    with pytest.raises(ConfigError, match="label_type"):
        SentencePredictionDataLoader(params.replace(label_type="string"))


def test_atomic_writes_keep_the_previous_file_on_error(tmp_path):
    path = str(tmp_path / "data.tfrecord")
    tfrecord_lib.write_examples(path, [{"x": [1, 2]}])

    def records():
        yield {"x": [3]}
        yield {"x": [1, "a"]}

    with pytest.raises(ValueError, match="feature 'x' mixes"):
        tfrecord_lib.write_examples(path, records())
    kept = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert [list(e.features.feature["x"].int64_list.value) for e in kept] == [[1, 2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.tfrecord"]


def test_tsv_pairs_are_tokenized_and_packed_with_named_labels(tmp_path, vocab_file):
    path = tmp_path / "dev.tsv"
    path.write_text(
        "index\tsentence1\tsentence2\tlabel\n"
        '0\tThe cat sat\tOn the "mat"\tentailment\n'
        "1\ta big red dog ran on the mat\tthe dog\tneutral\n"
    )
    params = SentencePredictionTextDataConfig(
        input_path=str(path),
        file_type="tsv",
        text_fields=["sentence1", "sentence2"],
        label_list=["contradiction", "entailment", "neutral"],
        vocab_file=vocab_file,
        seq_length=SEQ_LENGTH,
        global_batch_size=2,
        is_training=False,
    )
    features, labels = first_batch(SentencePredictionTextDataLoader(params))
    np.testing.assert_array_equal(labels, [1, 2])
    assert labels.dtype == np.int32
    # Lower-cased; the quotes are unknown characters of the TSV field, not CSV quoting.
    # Segment B (6 tokens) loses its last to fit 10 with segment A (3) and 3 specials.
    first = [CLS, *ids("the cat sat"), SEP, *ids("on the"), 1, *ids("mat"), SEP]
    np.testing.assert_array_equal(features["input_word_ids"][0], first)
    # Round-robin truncation to 10 tokens: 5 of segment A, 2 of segment B.
    second = [CLS, *ids("a big red dog ran"), SEP, *ids("the dog"), SEP]
    np.testing.assert_array_equal(features["input_word_ids"][1], second)
    np.testing.assert_array_equal(features["input_type_ids"][1], [0] * 7 + [1] * 3)
    np.testing.assert_array_equal(features["input_mask"][1], [1] * 10)


def test_csv_regression_with_quoted_fields_and_example_ids(tmp_path, vocab_file):
    path = tmp_path / "train.csv"
    path.write_text('example_id,score,text\n7,0.5,"hello, world"\n8,-2e-1,the cat\n')
    params = SentencePredictionTextDataConfig(
        input_path=str(path),
        file_type="csv",
        text_fields=["text"],
        label_field="score",
        label_type="float",
        include_example_id=True,
        vocab_file=vocab_file,
        seq_length=6,
        global_batch_size=2,
        is_training=False,
    )
    features, labels = first_batch(SentencePredictionTextDataLoader(params))
    np.testing.assert_allclose(labels, [0.5, -0.2])
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(features["example_id"], [7, 8])
    hello = [CLS, *ids("hello"), VOCAB.index(","), *ids("world"), SEP, 0]
    np.testing.assert_array_equal(features["input_word_ids"][0], hello)


def test_text_errors_name_the_file_and_column(tmp_path, vocab_file):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nthe cat\t1\nthe dog\tx\n")
    params = SentencePredictionTextDataConfig(
        input_path=str(path),
        file_type="tsv",
        text_fields=["sentence", "question"],
        vocab_file=vocab_file,
        seq_length=SEQ_LENGTH,
        global_batch_size=2,
        is_training=False,
    )
    with pytest.raises(ValueError, match=r"train.tsv.* no column 'question'"):
        SentencePredictionTextDataLoader(params).load()
    loader = SentencePredictionTextDataLoader(params.replace(text_fields=["sentence"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"column `label`.*train.tsv.*\[x\]"):
        first_batch(loader)
    with pytest.raises(ConfigError, match="vocab_file"):
        SentencePredictionTextDataLoader(params.replace(vocab_file=str(tmp_path / "none.txt")))
    with pytest.raises(ConfigError, match="text_fields"):
        SentencePredictionTextDataLoader(params.replace(text_fields=[]))


def test_tfrecord_text_and_training_shuffles_and_repeats(tmp_path, vocab_file):
    path = str(tmp_path / "text.tfrecord")
    sentences = ["the cat", "the dog", "a red mat", "hello world"]
    tfrecord_lib.write_examples(
        path, [{"sentence": s, "label": i} for i, s in enumerate(sentences)]
    )
    params = SentencePredictionTextDataConfig(
        input_path=path,
        text_fields=["sentence"],
        vocab_file=vocab_file,
        seq_length=6,
        global_batch_size=3,
        is_training=True,
        seed=3,
    )
    batches = list(SentencePredictionTextDataLoader(params).load().take(4))
    labels = np.concatenate([labels.numpy() for _, labels in batches])
    assert len(labels) == 12  # repeats past the 4 records
    for features, batch_labels in batches:
        for row, label in zip(
            features["input_word_ids"].numpy(), batch_labels.numpy(), strict=True
        ):
            expected = [CLS, *ids(sentences[label]), SEP]
            np.testing.assert_array_equal(row[: len(expected)], expected)


def test_sentencepiece_tokenization(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the cat sat on the mat", "a big red dog ran"] * 20))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "sp"),
        vocab_size=30,
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        pad_id=0,
        pad_piece="<pad>",
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    model = str(tmp_path / "sp.model")
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\nThe cat sat\t1\n")
    params = SentencePredictionTextDataConfig(
        input_path=str(path),
        file_type="tsv",
        text_fields=["text"],
        tokenization="SentencePiece",
        vocab_file=model,
        seq_length=12,
        global_batch_size=1,
        is_training=False,
    )
    features, labels = first_batch(SentencePredictionTextDataLoader(params))
    processor = sentencepiece.SentencePieceProcessor(model_file=model)
    pieces = processor.encode("the cat sat")
    cls, sep = processor.piece_to_id("[CLS]"), processor.piece_to_id("[SEP]")
    expected = [cls, *pieces, sep]
    np.testing.assert_array_equal(features["input_word_ids"][0, : len(expected)], expected)
    assert features["input_mask"][0].sum() == len(expected)
    np.testing.assert_array_equal(labels, [1])
