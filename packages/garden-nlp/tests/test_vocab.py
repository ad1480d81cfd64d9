"""Vocabulary files and learning: garden_nlp.text.vocab and the `garden-build-vocab` command."""

import os
import pathlib
import random
import subprocess
import sys

import pytest
import sentencepiece  # noqa: F401  (see below)
import tensorflow as tf
import tensorflow_text as tf_text

from garden_nlp.text import BertTokenizer, SentencepieceTokenizer
from garden_nlp.text import vocab as vocab_lib
from garden_nlp.tools import build_vocab

# The sentencepiece extra is in every test install (noxfile.py TEST_EXTRAS), so it is imported
# plainly: a missing or broken install fails instead of skipping the tests that need it.

COMMON = ["the", "river", "runs", "past", "old", "stone", "bridges", "and", "quiet", "towns"]
RARE = ["zephyr", "quixotic", "obelisk"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two text files: common words often (some capitalized, with punctuation), rare ones once."""
    rng = random.Random(0)
    directory = tmp_path_factory.mktemp("corpus")
    paths = []
    for part in range(2):
        lines = []
        for _ in range(150):
            words = [rng.choice(COMMON) for _ in range(rng.randint(4, 10))]
            words[0] = words[0].capitalize()
            lines.append(" ".join(words) + rng.choice([".", "!", "?", ","]))
        lines.append(" ".join(RARE) if part == 0 else "")
        path = directory / f"part{part}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(str(path))
    return paths


def test_learned_wordpiece_vocab_tokenizes_frequent_words_whole(tmp_path, corpus):
    tokens = vocab_lib.learn_wordpiece_vocab(",".join(corpus), 120, lower_case=True, lower_thresh=2)
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(tokens) <= 120
    assert len(set(tokens)) == len(tokens)
    assert all(token == token.lower() for token in tokens[5:])
    vocab_file = str(tmp_path / "vocab.txt")
    vocab_lib.write_vocab_file(vocab_file, tokens)
    assert vocab_lib.read_vocab_file(vocab_file) == tokens

    tokenizer = BertTokenizer(vocab_file)
    assert tokenizer.lower_case  # Inferred: no upper-case token.
    words = tokenizer(tf.constant(["The river runs past old stone bridges."]))[0].to_list()
    assert [len(pieces) for pieces in words] == [1] * 8  # Each frequent word is one token.
    assert [tokens[pieces[0]] for pieces in words] == COMMON[:7] + ["."]
    unseen = tokenizer(tf.constant(["riverstones zephyr ©"]))[0].to_list()
    pieces = [[tokens[i] for i in word] for word in unseen]
    assert len(pieces[0]) > 1  # Split into known pieces, not [UNK].
    assert all(piece.startswith("##") for piece in pieces[0][1:])
    assert "".join(p.removeprefix("##") for p in pieces[0]) == "riverstones"
    assert pieces[2] == ["[UNK]"]  # A character the corpus never had.


def test_cased_wordpiece_vocab_keeps_capitals(corpus):
    tokens = vocab_lib.learn_wordpiece_vocab(corpus, 120, lower_thresh=2)
    assert "The" in tokens
    assert "the" in tokens


def test_vocab_files_read_as_text_file_initializer_reads_them(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes("\ufeff[PAD]\r\n[UNK]\n\n  spaced \nlast".encode())
    assert vocab_lib.read_vocab_file(str(path)) == ["[PAD]", "[UNK]", "", "  spaced ", "last"]
    path.write_bytes(b"[PAD]\n\xff\xfe\n")
    with pytest.raises(ValueError, match="vocab.txt' is not UTF-8 text \\(line 2"):
        vocab_lib.read_vocab_file(str(path))
    with pytest.raises(ValueError, match="line break"):
        vocab_lib.write_vocab_file(str(tmp_path / "out.txt"), ["a", "b\nc"])


def test_writes_are_atomic_and_replace_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "new" / "vocab.txt"
    vocab_lib.write_vocab_file(str(target), ["[UNK]", "a"])
    vocab_lib.write_vocab_file(str(target), ["[UNK]", "b"])
    assert target.read_text() == "[UNK]\nb\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["vocab.txt"]

    def interrupted_rename(source, destination, overwrite=False):  # Local and remote renames.
        assert source != str(target)
        assert (
            pathlib.Path(source).read_text() == "[UNK]\nc\n"
        )  # Complete under the temporary name.
        raise KeyboardInterrupt

    monkeypatch.setattr(tf.io.gfile, "rename", interrupted_rename)
    monkeypatch.setattr(os, "replace", interrupted_rename)
    with pytest.raises(KeyboardInterrupt):
        vocab_lib.write_vocab_file(str(target), ["[UNK]", "c"])
    assert target.read_text() == "[UNK]\nb\n"  # The old file is untouched, no temp file left.
    assert sorted(p.name for p in target.parent.iterdir()) == ["vocab.txt"]


def test_bad_inputs_name_the_file(tmp_path, corpus):
    missing = str(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        vocab_lib.learn_wordpiece_vocab([corpus[0], missing], 100)
    with pytest.raises(FileNotFoundError, match="nothing-\\*.txt' match no file"):
        vocab_lib.resolve_input_files(str(tmp_path / "nothing-*.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="empty.txt' hold no words"):
        vocab_lib.learn_wordpiece_vocab(str(empty), 100)
    with pytest.raises(ValueError, match="no room"):
        vocab_lib.learn_wordpiece_vocab(corpus, 5)
    pattern = str(pathlib.Path(corpus[0]).parent / "part*.txt")
    assert vocab_lib.resolve_input_files(f"{pattern}, {corpus[0]}") == [*corpus, corpus[0]]


def test_sentencepiece_model_is_learned_loaded_and_round_trips(tmp_path, corpus):
    model = vocab_lib.learn_sentencepiece_model(corpus, 36, lower_case=True, num_threads=1)
    path = tmp_path / "sp.model"
    vocab_lib.write_bytes_atomically(str(path), model)
    tokenizer = SentencepieceTokenizer(lower_case=False, model_file_path=str(path))
    assert tokenizer.get_special_tokens_dict() == {
        "vocab_size": 36,
        "padding_id": 0,
        "start_of_sequence_id": 2,
        "end_of_segment_id": 3,
        "mask_id": 4,
    }
    text = ["The river runs past old stone bridges.", "quiet towns"]
    ids = tokenizer(tf.constant(text))
    assert ids.dtype == tf.int32
    detokenized = tf_text.SentencepieceTokenizer(model).detokenize(ids).numpy().tolist()
    assert [line.decode() for line in detokenized] == [line.lower() for line in text]
    with pytest.raises(ValueError, match="Vocabulary size too high"):
        vocab_lib.learn_sentencepiece_model(corpus, 5000, num_threads=1)


def test_without_sentencepiece_the_layers_import_and_the_command_says_what_to_install(
    corpus, tmp_path
):
    # A fresh interpreter where `import sentencepiece` fails, as when it is not installed.
    code = (
        "import sys; sys.modules['sentencepiece'] = None\n"
        "import garden_nlp.text, garden_nlp.text.vocab\n"
        "from garden_nlp.tools import build_vocab\n"
        f"argv = ['--input_files={corpus[0]}', '--output_file=sp.model', '--vocab_size=30']\n"
        "sys.exit(build_vocab.main(argv + ['--type=sentencepiece']))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == (
        "garden-build-vocab: error: learning a SentencePiece model needs the sentencepiece "
        "package: pip install 'garden-nlp[sentencepiece]'"
    )


# The command.


def test_command_builds_a_wordpiece_vocab(tmp_path, corpus, capsys):
    output = tmp_path / "out" / "vocab.txt"
    argv = [f"--input_files={','.join(corpus)}", f"--output_file={output}", "--vocab_size=100"]
    assert build_vocab.main([*argv, "--lower_case", "--lower_thresh=2"]) == 0
    tokens = output.read_text(encoding="utf-8").splitlines()
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "the" in tokens
    assert "The" not in tokens
    assert f"WordPiece tokens (uncased; --vocab_size 100) to {output}" in capsys.readouterr().out
    reserved = "--reserved_tokens=[PAD],[UNK],[CLS],[SEP],[MASK],[unused0]"
    assert build_vocab.main([*argv, "--nolower_case", "--lower_thresh=2", reserved]) == 0
    tokens = output.read_text(encoding="utf-8").splitlines()
    assert tokens[5] == "[unused0]"
    assert "The" in tokens


def test_command_builds_a_sentencepiece_model(tmp_path, corpus):
    output = tmp_path / "sp.model"
    argv = [f"--input_files={corpus[0]}", f"--output_file={output}", "--vocab_size=36"]
    assert build_vocab.main([*argv, "--type=sentencepiece", "--lower_case"]) == 0
    tokenizer = SentencepieceTokenizer(lower_case=False, model_file_path=str(output))
    assert tokenizer.vocab_size == 36
    upper, lower = tokenizer(tf.constant(["THE RIVER", "the river"])).to_list()
    assert upper == lower  # Case folding is part of the model.
    assert tokenizer.get_special_tokens_dict()["mask_id"] == 4


def test_command_errors_are_one_line_and_name_the_problem(tmp_path, corpus, capsys):
    output = str(tmp_path / "vocab.txt")
    missing = str(tmp_path / "gone.txt")
    argv = [f"--output_file={output}", "--vocab_size=100"]
    assert build_vocab.main([f"--input_files={corpus[0]},{missing}", *argv]) == 1
    error = capsys.readouterr().err
    assert error == f"garden-build-vocab: error: input file {missing!r} does not exist\n"
    assert not (tmp_path / "vocab.txt").exists()
    assert build_vocab.main([f"--input_files={corpus[0]}", *argv, "--model_type=bpe"]) == 1
    assert "--model_type apply to --type=sentencepiece only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        build_vocab.main([f"--input_files={corpus[0]}", f"--output_file={output}"])
    assert exit_info.value.code == 2
    assert "--vocab_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_vocab.main([*argv, f"--input_files={corpus[0]}", "--type=bytes"])
    assert "invalid choice: 'bytes'" in capsys.readouterr().err
