"""Pretraining input pipelines: static masks from TFRecords, dynamic masks from raw text."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from garden_core.config import ConfigError
from garden_nlp.configs.data import BertPretrainDataConfig, BertPretrainTextDataConfig
from garden_nlp.data import tfrecord_lib
from garden_nlp.data.pretrain_dataloader import BertPretrainDataLoader
from garden_nlp.data.pretrain_text_dataloader import (
    BertPretrainTextDataLoader,
    documents_from_text_file,
    next_sentence_pairs,
)

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "big", "red", "hello", "world"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "play", "##ing", "##s", "."]
PAD, CLS, SEP, MASK = 0, 2, 3, 4
DOCUMENTS = [
    ["the cat sat .", "on the mat .", "the dog ran ."],
    ["a big red dog", "hello world", "the cat ran", "a mat"],
    ["playing cats sat", "big dogs ran"],
]


@pytest.fixture
def vocab_file(tmp_path) -> str:
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{token}\n" for token in VOCAB))
    return str(path)


@pytest.fixture
def corpus(tmp_path) -> str:
    path = tmp_path / "corpus.txt"
    # Extra blank lines and surrounding spaces are not sentences.
    path.write_text("\n\n\n".join("\n".join(f" {s} " for s in doc) for doc in DOCUMENTS) + "\n")
    return str(path)


def word_ids(sentence: str) -> list[int]:
    pieces = {"playing": ["play", "##ing"], "cats": ["cat", "##s"], "dogs": ["dog", "##s"]}
    return [VOCAB.index(p) for w in sentence.split() for p in pieces.get(w, [w])]


def test_static_tfrecords_split_into_features_and_labels(tmp_path):
    path = str(tmp_path / "pretrain.tfrecord")
    records = [
        {
            "input_word_ids": [CLS, MASK, SEP, 5, SEP, 0],
            "input_mask": [1, 1, 1, 1, 1, 0],
            "input_type_ids": [0, 0, 0, 1, 1, 0],
            "masked_lm_positions": [1, 0],
            "masked_lm_ids": [6 + i, 0],
            "masked_lm_weights": [1.0, 0.0],
            "next_sentence_labels": i % 2,
        }
        for i in range(2)
    ]
    tfrecord_lib.write_examples(path, records)
    params = BertPretrainDataConfig(
        input_path=path,
        global_batch_size=2,
        is_training=False,
        seq_length=6,
        max_predictions_per_seq=2,
        use_v2_feature_names=True,
    )
    features, labels = next(iter(BertPretrainDataLoader(params).load()))
    assert set(features) == {
        "input_word_ids",
        "input_mask",
        "input_type_ids",
        "masked_lm_positions",
    }
    assert set(labels) == {"masked_lm_ids", "masked_lm_weights", "next_sentence_labels"}
    np.testing.assert_array_equal(features["input_word_ids"][0], [CLS, MASK, SEP, 5, SEP, 0])
    np.testing.assert_array_equal(labels["masked_lm_ids"][:, 0], [6, 7])
    np.testing.assert_array_equal(labels["next_sentence_labels"], [0, 1])
    assert labels["masked_lm_weights"].dtype == tf.float32
    assert features["masked_lm_positions"].dtype == tf.int32
    # Original BERT's feature names are the default.
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids"):
        next(iter(BertPretrainDataLoader(params.replace(use_v2_feature_names=False)).load()))


def test_text_files_split_into_documents_of_sentences(corpus):
    documents = [d.numpy().decode() for d in documents_from_text_file(corpus)]
    assert documents == ["\n".join(doc) for doc in DOCUMENTS]


def test_next_sentence_pairs_pick_the_next_or_another_documents_sentence():
    tf.random.set_seed(0)
    sentences = tf.ragged.constant(DOCUMENTS)
    document_of = {s: d for d, doc in enumerate(DOCUMENTS) for s in doc}
    random_count = 0
    for _ in range(20):
        first, second, labels = next_sentence_pairs(sentences)
        for a, b, label in zip(first.numpy(), second.numpy(), labels.numpy(), strict=True):
            a, b = a.decode(), b.decode()
            doc = DOCUMENTS[document_of[a]]
            if label == 0:
                assert doc.index(b) == doc.index(a) + 1
            else:
                assert document_of[b] != document_of[a]
                random_count += 1
    # 9 sentences, 3 of them last in their document: 3 + 6 / 2 random pairs expected.
    assert 0.45 < random_count / (20 * 9) < 0.75


def pretrain_params(corpus: str, vocab_file: str, **overrides) -> BertPretrainTextDataConfig:
    values = {
        "input_path": corpus,
        "file_type": "txt",
        "vocab_file_path": vocab_file,
        "seq_length": 12,
        "max_predictions_per_seq": 3,
        "masking_rate": 0.3,
        "doc_batch_size": 3,
        "global_batch_size": 9,
        "is_training": False,
        "random_token_rate": 0.0,
        "unchanged_token_rate": 0.0,
        **overrides,
    }
    return BertPretrainTextDataConfig(**values)


def unmasked(features, labels) -> np.ndarray:
    ids = features["input_word_ids"].numpy().copy()
    for row, positions in enumerate(features["masked_lm_positions"].numpy()):
        weights = labels["masked_lm_weights"].numpy()[row]
        for position, original, weight in zip(
            positions, labels["masked_lm_ids"].numpy()[row], weights, strict=True
        ):
            if weight:
                ids[row, position] = original
    return ids


def test_dynamic_masks_label_the_original_tokens_and_change_every_epoch(corpus, vocab_file):
    dataset = BertPretrainTextDataLoader(pretrain_params(corpus, vocab_file)).load()
    sentences = [s for doc in DOCUMENTS for s in doc]
    masks = set()
    for features, labels in dataset.repeat(3):  # Three epochs of one batch each.
        ids = features["input_word_ids"].numpy()
        assert ids.shape == (9, 12)
        positions = features["masked_lm_positions"].numpy()
        weights = labels["masked_lm_weights"].numpy()
        masks.add(positions.tobytes())
        original = unmasked(features, labels)
        for row in range(9):
            real = positions[row][weights[row] > 0]
            # 30% of the selectable tokens, at most 3; never [CLS], [SEP] or [PAD].
            selectable = np.sum(~np.isin(original[row], [PAD, CLS, SEP]))
            assert len(real) == min(int(np.ceil(selectable * 0.3)), 3)
            assert not np.isin(original[row][real], [PAD, CLS, SEP]).any()
            np.testing.assert_array_equal(ids[row][real], MASK)
            # The unmasked sequence is [CLS] A [SEP] B [SEP] of two corpus sentences.
            length = int(features["input_mask"].numpy()[row].sum())
            sequence = original[row][:length].tolist()
            separator = sequence.index(SEP)
            first, second = sequence[1:separator], sequence[separator + 1 : -1]
            assert sequence[0] == CLS
            assert sequence[-1] == SEP
            assert any(word_ids(s)[: len(first)] == first for s in sentences)
            assert any(word_ids(s)[: len(second)] == second for s in sentences)
            type_ids = features["input_type_ids"].numpy()[row][:length]
            np.testing.assert_array_equal(
                type_ids, [0] * (separator + 1) + [1] * (length - separator - 1)
            )
    assert len(masks) > 1


def test_whole_word_masking_masks_every_piece_of_a_word(corpus, vocab_file):
    params = pretrain_params(corpus, vocab_file, use_whole_word_masking=True, masking_rate=0.5)
    dataset = BertPretrainTextDataLoader(params).load()
    suffix = [VOCAB.index("##ing"), VOCAB.index("##s")]
    for features, labels in dataset.repeat(3):
        original = unmasked(features, labels)
        ids = features["input_word_ids"].numpy()
        weights = labels["masked_lm_weights"].numpy()
        assert (weights.sum(axis=1) <= 3).all()
        for row in range(len(ids)):
            masked = ids[row] == MASK
            for position in np.flatnonzero(np.isin(original[row], suffix)):
                assert masked[position] == masked[position - 1]


def test_text_pretraining_config_errors(corpus, vocab_file, tmp_path):
    params = pretrain_params(corpus, vocab_file)
    with pytest.raises(ConfigError, match="exceed 1"):
        BertPretrainTextDataLoader(params.replace(random_token_rate=0.6, unchanged_token_rate=0.5))
    with pytest.raises(ConfigError, match="text_field_names"):
        BertPretrainTextDataLoader(
            params.replace(file_type="tfrecord", text_field_names=["a", "b"])
        )
    no_mask = tmp_path / "no_mask.txt"
    no_mask.write_text("".join(f"{t}\n" for t in VOCAB if t != "[MASK]"))
    with pytest.raises(ConfigError, match=r"no_mask.txt.*\[MASK\]"):
        BertPretrainTextDataLoader(params.replace(vocab_file_path=str(no_mask)))


class GardenTinyDocuments(tfds.core.GeneratorBasedBuilder):
    """`DOCUMENTS` as a TFDS dataset: `text` (sentences joined by newlines), `title`, `index`."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"text": tfds.features.Text(), "title": tfds.features.Text(), "index": tf.int64}
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Generated locally: nothing to download.
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for index, document in enumerate(DOCUMENTS):
            yield index, {"text": "\n".join(document), "title": f"doc {index}", "index": index}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory) -> str:
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    GardenTinyDocuments(data_dir=data_dir).download_and_prepare(download_config=config)
    return data_dir


def test_text_pretraining_reads_documents_from_a_tfds_dataset(tfds_dir, vocab_file):
    source = {
        "input_path": "",
        "file_type": "tfrecord",
        "tfds_name": "garden_tiny_documents",
        "tfds_split": "train",
        "tfds_data_dir": tfds_dir,
    }
    # One example per document: [CLS] document [SEP], the document cut to 10 tokens.
    params = pretrain_params(
        "", vocab_file, use_next_sentence_label=False, global_batch_size=3, **source
    )
    rows = []
    for features, labels in BertPretrainTextDataLoader(params).load():
        rows += [tuple(row) for row in unmasked(features, labels)]
    expected = []
    for document in DOCUMENTS:
        ids = [CLS, *word_ids(" ".join(document))[:10], SEP]
        expected.append(tuple(ids + [PAD] * (12 - len(ids))))
    assert sorted(rows) == sorted(expected)

    # With next-sentence labels, one example per sentence, both segments from the corpus.
    params = pretrain_params("", vocab_file, **source)
    features, labels = next(iter(BertPretrainTextDataLoader(params).load()))
    original = unmasked(features, labels)
    assert original.shape == (9, 12)
    sentences = [word_ids(s) for doc in DOCUMENTS for s in doc]
    for row, mask in zip(original, features["input_mask"].numpy(), strict=True):
        sequence = row[: int(mask.sum())].tolist()
        separator = sequence.index(SEP)
        for segment in (sequence[1:separator], sequence[separator + 1 : -1]):
            assert any(s[: len(segment)] == segment for s in sentences)

    # Text fields must be string features of the dataset.
    for fields, message in [(["body"], "lacks.*index, text, title"), (["index"], "int64")]:
        bad = pretrain_params(
            "", vocab_file, use_next_sentence_label=False, text_field_names=fields, **source
        )
        with pytest.raises(ConfigError, match=f"text_field_names.*{message}"):
            BertPretrainTextDataLoader(bad).load()
