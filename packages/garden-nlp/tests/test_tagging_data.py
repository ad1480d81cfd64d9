"""Tagging data: CoNLL text to word-piece features, and the TFRecord input pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from garden_nlp.configs.data import TaggingDataConfig
from garden_nlp.data import tagging_dataloader as tagging
from garden_nlp.data.tokenization import FullTokenizer

VOCAB = [
    *["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    *["john", "smith", "lives", "in", "new", "york", "play", "##ing", "##s", "."],
]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
CONLL = (
    "-DOCSTART- -X- O O\n"
    "\n"
    "John\tB-PER\n"
    "Smith\tI-PER\n"
    "lives\tO\n"
    "in O\n"
    "New B-LOC\n"
    "York\tI-LOC\n"
    ".\tO\n"
    "\n\n"
    "playing\tO\n"
    "Zzyzx\tB-LOC\n"
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> FullTokenizer:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(f"{token}\n" for token in VOCAB))
    return FullTokenizer(str(path), lower_case=True)


def read(tmp_path, text=CONLL):
    path = tmp_path / "train.tsv"
    path.write_text(text)
    return tagging.read_tagging_file(str(path), LABELS)


def test_conll_sentences_and_first_piece_labels(tmp_path, tokenizer):
    examples = read(tmp_path)
    assert [e.words for e in examples] == [
        ["John", "Smith", "lives", "in", "New", "York", "."],
        ["playing", "Zzyzx"],
    ]
    assert examples[0].label_ids == [1, 2, 0, 0, 3, 4, 0]
    assert [e.sentence_id for e in examples] == [0, 1]
    (pieces,) = tagging.tokenize_example(examples[1], tokenizer, max_seq_length=8)
    # "playing" -> play ##ing: the tag on the first piece only; an unknown word is [UNK].
    assert pieces.words == [VOCAB.index(t) for t in ("play", "##ing", "[UNK]")]
    assert pieces.label_ids == [0, -1, 3]
    features = tagging.example_to_features(pieces, tokenizer, max_seq_length=8)
    assert features["input_ids"] == [2, *pieces.words, 3, 0, 0, 0]
    assert features["label_ids"] == [-1, 0, -1, 3, -1, -1, -1, -1]
    assert features["input_mask"] == [1] * 5 + [0] * 3


def test_long_sentences_split_into_sub_sentences(tmp_path, tokenizer):
    example = read(tmp_path)[0]
    parts = tagging.tokenize_example(example, tokenizer, max_seq_length=5)
    # Three word pieces per part at most, never splitting a word's pieces.
    assert [p.words for p in parts] == [
        [VOCAB.index(w) for w in ("john", "smith", "lives")],
        [VOCAB.index(w) for w in ("in", "new", "york")],
        [VOCAB.index(".")],
    ]
    assert [p.sub_sentence_id for p in parts] == [0, 1, 2]
    assert [p.label_ids for p in parts] == [[1, 2, 0], [0, 3, 4], [0]]


def test_tagging_loader_reads_written_features(tmp_path, tokenizer):
    path = str(tmp_path / "train.tfrecord")
    count = tagging.write_tagging_tfrecord(read(tmp_path), tokenizer, 6, path)
    assert count == 3  # 7 pieces split in 4 + 3, and 3 pieces.
    params = TaggingDataConfig(
        input_path=path,
        seq_length=6,
        global_batch_size=3,
        is_training=False,
        include_sentence_id=True,
    )
    features, labels = next(iter(tagging.TaggingDataLoader(params).load()))
    assert set(features) == {
        "input_word_ids",
        "input_mask",
        "input_type_ids",
        "sentence_id",
        "sub_sentence_id",
    }
    np.testing.assert_array_equal(features["sentence_id"], [0, 0, 1])
    np.testing.assert_array_equal(features["sub_sentence_id"], [0, 1, 0])
    np.testing.assert_array_equal(labels[0], [-1, 1, 2, 0, 0, -1])
    np.testing.assert_array_equal(labels[2], [-1, 0, -1, 3, -1, -1])
    assert labels.dtype == np.int32
    plain = next(iter(tagging.TaggingDataLoader(params.replace(include_sentence_id=False)).load()))
    assert set(plain[0]) == {"input_word_ids", "input_mask", "input_type_ids"}


def test_unknown_tags_name_the_file_and_line(tmp_path):
    with pytest.raises(ValueError, match=r"train.tsv:3: tag 'B-ORG'"):
        read(tmp_path, "John\tB-PER\n\nAcme\tB-ORG\n")
