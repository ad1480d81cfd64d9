"""garden_nlp.text layers: WordPiece and SentencePiece tokenizers and BERT input packing."""

import random
import unicodedata

import keras
import numpy as np
import pytest
import sentencepiece  # noqa: F401  (see below)
import tensorflow as tf
import tensorflow_text as tf_text

from garden_nlp.text import BertPackInputs, BertTokenizer, SentencepieceTokenizer
from garden_nlp.text.bert_tokenizer import infer_lower_case
from garden_nlp.text.vocab import learn_sentencepiece_model, write_vocab_file

# The sentencepiece extra is in every test install (noxfile.py TEST_EXTRAS), so it is imported
# plainly: a missing or broken install fails instead of skipping the tests that need it.

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "quick", "brown", "fox", "jump", "over", "lazy", "dog", "cafe", "naive"]
WORDS += ["hello", "world", "strasse", "uber", "istanbul", "un", "ab", "ex", "in", "on"]
SUFFIXES = ["##s", "##ed", "##ing", "##e", "##a", "##i", "##o", "##n", "##t", "##r", "##l"]
CHARS = list("abcdefghilmnorstuvwxz") + list(".,!?'()-#[]$%") + ["一", "二", "你", "好"]
CASED = ["The", "Hello", "World", "Café", "Über", "##É", "É"]
# Punctuation, accents, CJK, unknown words, empty strings, control and format characters,
# ligatures and other compatibility forms, over-long words.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   ",
    "Hello, World! (hello-world) #tag [CLS] [SEP]",
    "café naïve Café NAÏVE Über über",
    "Straße STRASSE strasse İstanbul",
    "你好一二 三四 你好!",
    "unknownwordzzq xyzzy qqq",
    "foxes jumped!!! ... ?!",
    "\t tabs\nnewline\r\n end",
    "zero\u200bwidth ctrl\x00char\x07bell",
    "ﬁ ﬀ Ⅻ ＡＢＣ ﾊﾝｶｸ ℌ",
    "d\u0301 e\u0301 combining",
    "a" * 100 + " " + "a" * 101,
    "emoji 😀 ok",
]
UNICODE_SPACES = "no\u00a0break\u3000ideographic\u2003em"


def _write(path, tokens):
    write_vocab_file(str(path), tokens)
    return str(path)


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("vocab")


@pytest.fixture(scope="module")
def uncased_vocab(vocab_dir):
    return _write(vocab_dir / "uncased_vocab.txt", SPECIAL + WORDS + SUFFIXES + CHARS)


@pytest.fixture(scope="module")
def cased_vocab(vocab_dir):
    return _write(vocab_dir / "cased_vocab.txt", SPECIAL + WORDS + CASED + SUFFIXES + CHARS)


def _read(vocab_file):
    with open(vocab_file, encoding="utf-8") as f:
        return f.read().splitlines()


def _reference(vocab_file, **options):
    tokens = _read(vocab_file)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tokens, tf.range(len(tokens), dtype=tf.int64)), -1
    )
    return tf_text.BertTokenizer(table, token_out_type=tf.int64, **options)


# BertTokenizer.


@pytest.mark.parametrize("lower_case", [True, False])
def test_fast_bert_tokenizer_gives_the_tokens_of_tf_text_bert_tokenizer(
    uncased_vocab, cased_vocab, lower_case
):
    vocab_file = uncased_vocab if lower_case else cased_vocab
    tokenizer = BertTokenizer(vocab_file, lower_case=lower_case)
    assert tokenizer.uses_fast_bert_tokenizer
    corpus = CORPUS + ([UNICODE_SPACES] if lower_case else [])
    tokens = tokenizer(tf.constant(corpus))
    assert tokens.dtype == tf.int32
    assert tokens.ragged_rank == 2
    assert tokens.shape.as_list() == [len(corpus), None, None]
    expected = _reference(vocab_file, lower_case=lower_case).tokenize(corpus)
    assert tokens.to_list() == expected.to_list()  # Same pieces, grouped into the same words.


def test_cased_fast_tokenizer_splits_on_unicode_spaces_as_original_bert(cased_vocab):
    # The one documented token difference: TF.Text's BertTokenizer without normalization
    # splits on ASCII whitespace only and sees one unknown word here.
    tokenizer = BertTokenizer(cased_vocab, lower_case=False)
    vocab = _read(cased_vocab)
    words = tokenizer(tf.constant(["hello\u00a0world\u3000the"]))[0].to_list()
    assert [[vocab[i] for i in word] for word in words] == [["hello"], ["world"], ["the"]]
    reference = _reference(cased_vocab).tokenize(["hello\u00a0world\u3000the"])[0]
    assert reference.to_list() == [[vocab.index("[UNK]")]]


def test_offsets_are_byte_ranges_of_the_input(uncased_vocab):
    tokenizer = BertTokenizer(uncased_vocab, lower_case=True, tokenize_with_offsets=True)
    vocab = _read(uncased_vocab)
    corpus = ["Café naïve jumped!", "ÜBER the foxes", ""]
    tokens, starts, limits = tokenizer(tf.constant(corpus))
    assert starts.dtype == limits.dtype == tf.int64
    assert tokens.to_list()[2] == []
    assert starts.to_list()[2] == []
    for text, words, word_starts, word_limits in zip(
        corpus, tokens.to_list(), starts.to_list(), limits.to_list(), strict=True
    ):
        data = text.encode("utf-8")
        for ids, begins, ends in zip(words, word_starts, word_limits, strict=True):
            for token_id, begin, end in zip(ids, begins, ends, strict=True):
                piece = data[begin:end].decode("utf-8")
                folded = unicodedata.normalize("NFD", piece.lower())
                folded = "".join(c for c in folded if unicodedata.category(c) != "Mn")
                assert folded == vocab[token_id].removeprefix("##"), (text, piece)


def test_options_fast_bert_tokenizer_lacks_use_tf_text_bert_tokenizer(vocab_dir):
    vocab_file = _write(vocab_dir / "unused_vocab.txt", SPECIAL + ["[unused0]"] + WORDS + CHARS)
    options = {"preserve_unused_token": True}
    tokenizer = BertTokenizer(vocab_file, lower_case=True, tokenizer_kwargs=options)
    assert not tokenizer.uses_fast_bert_tokenizer
    corpus = ["the [unused0] fox", "Hello, world!", ""]
    expected = _reference(vocab_file, lower_case=True, **options).tokenize(corpus)
    tokens = tokenizer(tf.constant(corpus))
    assert tokens.dtype == tf.int32
    assert tokens.to_list() == expected.to_list()
    assert tokens.to_list()[0][1] == [5]  # [unused0], kept whole.
    with_offsets = BertTokenizer(
        vocab_file, lower_case=True, tokenize_with_offsets=True, tokenizer_kwargs=options
    )
    ids, starts, limits = with_offsets(tf.constant(["the fox"]))
    vocab = SPECIAL + ["[unused0]"] + WORDS + CHARS
    assert ids.to_list() == [[[vocab.index("the")], [vocab.index("fox")]]]
    assert starts.to_list() == [[[0], [4]]]
    assert limits.to_list() == [[[3], [7]]]


def test_vocabulary_with_whitespace_in_a_token_uses_tf_text_bert_tokenizer(vocab_dir):
    vocab_file = _write(vocab_dir / "space_vocab.txt", SPECIAL + ["a b"] + WORDS + CHARS)
    tokenizer = BertTokenizer(vocab_file, lower_case=True)
    assert not tokenizer.uses_fast_bert_tokenizer
    vocab = SPECIAL + ["a b"] + WORDS + CHARS
    words = tokenizer(tf.constant(["a b"]))[0].to_list()
    assert [[vocab[i] for i in word] for word in words] == [["a"], ["b"]]


def test_lower_case_is_inferred_from_the_path_then_the_tokens(vocab_dir, uncased_vocab):
    assert BertTokenizer(uncased_vocab).lower_case
    tokens = SPECIAL + ["the", "fox"]
    assert infer_lower_case("models/uncased_L-12/vocab.txt", tokens + ["The"])
    assert not infer_lower_case("models/cased_L-12/vocab.txt", tokens)
    assert infer_lower_case("vocab.txt", tokens + ["[unused0]", "<pad>"])
    assert not infer_lower_case("vocab.txt", tokens + ["Fox"])
    vocab_file = _write(vocab_dir / "vocab.txt", SPECIAL + CASED + WORDS + CHARS)
    tokenizer = BertTokenizer(vocab_file)
    assert not tokenizer.lower_case
    assert tokenizer(tf.constant(["The"])).to_list() == [[[5]]]  # Cased: "The" is token 5.
    # tokenizer_kwargs sets it when the argument is None; the argument wins over both.
    assert BertTokenizer(vocab_file, tokenizer_kwargs={"lower_case": True}).lower_case
    assert not BertTokenizer(uncased_vocab, False, tokenizer_kwargs={"lower_case": True}).lower_case


def test_special_tokens_dict(vocab_dir, uncased_vocab):
    tokenizer = BertTokenizer(uncased_vocab)
    size = len(SPECIAL + WORDS + SUFFIXES + CHARS)
    assert tokenizer.vocab_size == size
    assert tokenizer.get_special_tokens_dict() == {
        "vocab_size": size,
        "start_of_sequence_id": 2,
        "end_of_segment_id": 3,
        "padding_id": 0,
        "mask_id": 4,
    }
    no_mask = _write(vocab_dir / "no_mask_vocab.txt", ["[UNK]", "[SEP]", "[CLS]", "[PAD]", "a"])
    special = BertTokenizer(no_mask).get_special_tokens_dict()
    assert special == {
        "vocab_size": 5,
        "start_of_sequence_id": 2,
        "end_of_segment_id": 1,
        "padding_id": 3,
    }


def test_bad_vocabularies_and_options_name_the_problem(vocab_dir, uncased_vocab):
    missing = str(vocab_dir / "missing.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        BertTokenizer(missing)
    empty = vocab_dir / "empty_vocab.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty_vocab.txt.*empty"):
        BertTokenizer(str(empty))
    no_unk = _write(vocab_dir / "no_unk_vocab.txt", ["[PAD]", "[CLS]", "[SEP]", "a"])
    with pytest.raises(ValueError, match="no_unk_vocab.txt.*'\\[UNK\\]'"):
        BertTokenizer(no_unk)
    twice = _write(vocab_dir / "twice_vocab.txt", ["[UNK]", "a", "b", "a"])
    with pytest.raises(ValueError, match="twice_vocab.txt.*'a' twice \\(lines 2 and 4\\)"):
        BertTokenizer(twice)
    with pytest.raises(ValueError, match="token_out_type"):
        BertTokenizer(uncased_vocab, tokenizer_kwargs={"token_out_type": tf.string})
    with pytest.raises(ValueError, match="shape \\[batch_size\\]"):
        BertTokenizer(uncased_vocab)(tf.constant([["a"]]))


def test_tokenizer_config_round_trips(uncased_vocab):
    tokenizer = BertTokenizer(
        uncased_vocab, lower_case=True, tokenizer_kwargs={"max_bytes_per_word": 8}, name="tok"
    )
    clone = BertTokenizer.from_config(tokenizer.get_config())
    assert clone.name == "tok"
    assert clone.tokenizer_kwargs == {"max_bytes_per_word": 8}
    corpus = tf.constant(["The quick brownbrownbrown fox."])
    assert clone(corpus).to_list() == tokenizer(corpus).to_list()
    assert tokenizer(corpus).to_list()[0][2] == [1]  # Longer than 8 bytes: [UNK].
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(clone))
    assert isinstance(restored, BertTokenizer)
    assert restored.vocab_file == uncased_vocab


# BertPackInputs.


def _reference_pack(segments, seq_length, truncator):
    segments = [s.merge_dims(1, -1) if s.shape.rank > 2 else s for s in segments]
    trimmer = tf_text.RoundRobinTrimmer if truncator == "round_robin" else tf_text.WaterfallTrimmer
    trimmed = trimmer(seq_length - len(segments) - 1).trim(segments)
    combined, segment_ids = tf_text.combine_segments(trimmed, 2, 3)
    word_ids, mask = tf_text.pad_model_inputs(combined, seq_length, pad_value=0)
    type_ids, _ = tf_text.pad_model_inputs(segment_ids, seq_length, pad_value=0)
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


@pytest.mark.parametrize("truncator", ["round_robin", "waterfall"])
def test_packing_matches_combine_segments_and_pad_model_inputs(truncator):
    rng = random.Random(0)
    for _ in range(12):
        num_segments, batch_size = rng.randint(1, 3), rng.randint(1, 4)
        seq_length = rng.randint(num_segments + 2, 16)
        rank_3 = rng.random() < 0.5
        segments = []
        for _ in range(num_segments):
            rows = [
                [[rng.randint(5, 99)] * rng.randint(1, 2) for _ in range(rng.randint(0, 9))]
                for _ in range(batch_size)
            ]
            if not rank_3:
                rows = [[piece for word in row for piece in word] for row in rows]
            segments.append(
                tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=2 if rank_3 else 1)
            )
        packer = BertPackInputs(
            seq_length,
            start_of_sequence_id=2,
            end_of_segment_id=3,
            padding_id=0,
            truncator=truncator,
        )
        packed = packer(segments if num_segments > 1 or rng.random() < 0.5 else segments[0])
        expected = _reference_pack(segments, seq_length, truncator)
        for key, value in expected.items():
            assert packed[key].dtype == tf.int32
            assert packed[key].shape == (batch_size, seq_length)
            np.testing.assert_array_equal(packed[key], value, err_msg=f"{key} {truncator}")


def test_packed_layout_of_two_segments():
    packer = BertPackInputs(8, special_tokens_dict={"start_of_sequence_id": 2,
                            "end_of_segment_id": 3, "padding_id": 0, "vocab_size": 50})  # fmt: skip
    first = tf.ragged.constant([[10, 11, 12, 13], [10]])
    second = tf.ragged.constant([[20, 21, 22], []])
    packed = packer([first, second])
    assert packed["input_word_ids"].numpy().tolist() == [
        [2, 10, 11, 12, 3, 20, 21, 3],
        [2, 10, 3, 3, 0, 0, 0, 0],
    ]
    assert packed["input_mask"].numpy().tolist() == [[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]]
    assert packed["input_type_ids"].numpy().tolist() == [
        [0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 1, 0, 0, 0, 0],
    ]


def test_packer_errors_name_the_problem():
    ids = {"start_of_sequence_id": 2, "end_of_segment_id": 3, "padding_id": 0}
    with pytest.raises(ValueError, match="seq_length must be at least 3"):
        BertPackInputs(2, **ids)
    with pytest.raises(ValueError, match="seq_length 4 .* 3 segments .* at least 5"):
        BertPackInputs(4, **ids)([tf.ragged.constant([[1]])] * 3)
    with pytest.raises(ValueError, match="no padding_id \\(\\[PAD\\]\\)"):
        BertPackInputs(8, special_tokens_dict={"start_of_sequence_id": 2, "end_of_segment_id": 3})
    with pytest.raises(ValueError, match="missing padding_id"):
        BertPackInputs(8, start_of_sequence_id=2, end_of_segment_id=3)
    with pytest.raises(ValueError, match="not both"):
        BertPackInputs(8, special_tokens_dict=ids, padding_id=0)
    with pytest.raises(ValueError, match="unknown truncator 'longest'.*round_robin, waterfall"):
        BertPackInputs(8, truncator="longest", **ids)
    with pytest.raises(ValueError, match="same rank"):
        BertPackInputs(8, **ids)([tf.ragged.constant([[1]]), tf.ragged.constant([[[1]]])])
    packer = BertPackInputs(8, truncator="waterfall", **ids)
    assert BertPackInputs.from_config(packer.get_config()).get_config() == packer.get_config()


# Graphs: tf.data, tf.function, SavedModel.


def test_layers_run_in_tf_data_with_static_shapes(uncased_vocab):
    tokenizer = BertTokenizer(uncased_vocab)
    packer = BertPackInputs(16, special_tokens_dict=tokenizer.get_special_tokens_dict())
    dataset = (
        tf.data.Dataset.from_tensor_slices(CORPUS)
        .batch(4)
        .map(lambda text: packer([tokenizer(text), tokenizer(text)]))
    )
    assert dataset.element_spec["input_word_ids"].shape.as_list() == [None, 16]
    batches = list(dataset)
    eager = packer([tokenizer(tf.constant(CORPUS))] * 2)
    for key in eager:
        np.testing.assert_array_equal(tf.concat([b[key] for b in batches], 0), eager[key])


class _Preprocessor(tf.Module):
    def __init__(self, tokenizers, packer):
        super().__init__()
        self.tokenizers = tokenizers
        self.packer = packer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        outputs = {}
        for name, tokenizer in self.tokenizers.items():
            for key, value in self.packer(tokenizer(text)).items():
                outputs[f"{name}/{key}"] = value
        return outputs


def test_saved_model_carries_the_vocabularies(tmp_path, uncased_vocab, sentencepiece_model):
    fast_file = _write(tmp_path / "fast_vocab.txt", SPECIAL + WORDS + SUFFIXES + CHARS)
    table_file = _write(tmp_path / "table_vocab.txt", SPECIAL + ["[unused0]"] + WORDS + CHARS)
    model_file = tmp_path / "sp.model"
    model_file.write_bytes(sentencepiece_model)
    tokenizers = {
        "fast": BertTokenizer(fast_file),
        "table": BertTokenizer(table_file, tokenizer_kwargs={"preserve_unused_token": True}),
        "sentencepiece": SentencepieceTokenizer(lower_case=True, model_file_path=str(model_file)),
    }
    assert tokenizers["fast"].uses_fast_bert_tokenizer
    assert not tokenizers["table"].uses_fast_bert_tokenizer
    packer = BertPackInputs(12, start_of_sequence_id=2, end_of_segment_id=3, padding_id=0)
    module = _Preprocessor(tokenizers, packer)
    text = tf.constant(CORPUS)
    expected = module(text)
    tf.saved_model.save(module, str(tmp_path / "saved"))
    for path in (fast_file, table_file, model_file):
        tf.io.gfile.remove(str(path))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    outputs = loaded(text)
    assert sorted(outputs) == sorted(expected)
    for key, value in expected.items():
        assert outputs[key].dtype == tf.int32
        np.testing.assert_array_equal(outputs[key], value, err_msg=key)
    assert int(tf.reduce_sum(expected["fast/input_mask"])) > 2 * len(CORPUS)


# SentencepieceTokenizer.


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("sp") / "corpus.txt"
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(300)]
    corpus.write_text("\n".join(lines + ["café über naïve", "Hello World"]) + "\n")
    return learn_sentencepiece_model(str(corpus), 40, num_threads=1)


def test_sentencepiece_tokenizer_tokenizes_and_finds_albert_special_pieces(sentencepiece_model):
    tokenizer = SentencepieceTokenizer(lower_case=True, model_serialized_proto=sentencepiece_model)
    assert tokenizer.vocab_size == 40
    assert tokenizer.get_special_tokens_dict() == {
        "vocab_size": 40,
        "start_of_sequence_id": 2,
        "end_of_segment_id": 3,
        "padding_id": 0,
        "mask_id": 4,
    }
    reference = tf_text.SentencepieceTokenizer(sentencepiece_model, out_type=tf.int32)
    corpus = ["the quick fox", "", "THE Quick FOX"]
    tokens = tokenizer(tf.constant(corpus))
    assert tokens.dtype == tf.int32
    assert tokens.shape.as_list() == [3, None]
    lowered = [text.lower() for text in corpus]
    assert tokens.to_list() == reference.tokenize(lowered).to_list()
    assert tokens.to_list()[0] == tokens.to_list()[2]
    assert tokens.to_list()[1] == []


def test_sentencepiece_options(sentencepiece_model):
    plain = SentencepieceTokenizer(lower_case=False, model_serialized_proto=sentencepiece_model)
    stripped = SentencepieceTokenizer(
        lower_case=False, model_serialized_proto=sentencepiece_model, strip_diacritics=True
    )
    assert stripped(tf.constant(["café"])).to_list() == plain(tf.constant(["cafe"])).to_list()
    with_offsets = SentencepieceTokenizer(
        lower_case=False, model_serialized_proto=sentencepiece_model, tokenize_with_offsets=True
    )
    tokens, starts, limits = with_offsets(tf.constant(["the fox"]))
    assert tokens.to_list() == plain(tf.constant(["the fox"])).to_list()
    assert starts.dtype == tf.int64
    assert limits.to_list()[0][-1] == len("the fox")
    sampled = SentencepieceTokenizer(
        lower_case=False, model_serialized_proto=sentencepiece_model, nbest_size=-1, alpha=0.1
    )
    sentence = "the quick brown jump strasse world"
    samples = sampled(tf.constant([sentence] * 256))
    assert len({tuple(row) for row in samples.to_list()}) > 1  # Subword sampling.
    detokenized = tf_text.SentencepieceTokenizer(sentencepiece_model).detokenize(samples)
    assert set(detokenized.numpy().tolist()) == {sentence.encode()}  # Same text, other pieces.
    clone = SentencepieceTokenizer.from_config(with_offsets.get_config())
    assert clone.tokenize_with_offsets
    assert clone(tf.constant(["the fox"]))[0].to_list() == tokens.to_list()


def test_sentencepiece_errors(tmp_path, sentencepiece_model):
    with pytest.raises(ValueError, match="exactly one of"):
        SentencepieceTokenizer(lower_case=True)
    with pytest.raises(ValueError, match="exactly one of"):
        SentencepieceTokenizer(
            lower_case=True, model_file_path="a.model", model_serialized_proto=b"x"
        )
    with pytest.raises(FileNotFoundError, match="nothing.model"):
        SentencepieceTokenizer(lower_case=True, model_file_path=str(tmp_path / "nothing.model"))
    with pytest.raises(ValueError, match="strip_diacritics"):
        SentencepieceTokenizer(
            lower_case=True,
            model_serialized_proto=sentencepiece_model,
            tokenize_with_offsets=True,
            strip_diacritics=True,
        )
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.model"):
        SentencepieceTokenizer(lower_case=True, model_file_path=str(bad))
