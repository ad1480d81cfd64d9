"""Reading, learning and writing the vocabularies that Garden's tokenizers use.

- `read_vocab_file(path)`: the tokens of a WordPiece vocabulary file, one per line, as
  `BertTokenizer` reads them (line number = token id).
- `write_vocab_file(path, tokens)`: writes such a file atomically.
- `learn_wordpiece_vocab(input_files, vocab_size, ...)`: learns a BERT WordPiece vocabulary
  from text files with TF.Text's WordPiece learner (the algorithm of
  `tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset`): the text is split into
  words as `BertTokenizer` splits it, then word pieces are chosen by frequency. The reserved
  tokens (by default `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`) come first.
- `learn_sentencepiece_model(input_files, vocab_size, ...)`: trains a SentencePiece model
  with the `sentencepiece` package (the optional extra `garden-nlp[sentencepiece]`), with
  ALBERT's special pieces `<pad>`, `<unk>`, `[CLS]`, `[SEP]`, `[MASK]` as ids 0 to 4.
- `write_bytes_atomically(path, data)`: writes a file under a temporary name, then renames it.

Input files are plain UTF-8 text, one sentence or paragraph per line; paths may be globs and
any filesystem `tf.io.gfile` reads (local, `gs://`, ...). The `garden-build-vocab` command
(`garden_nlp.tools.build_vocab`) runs the learners from the command line.
"""

from __future__ import annotations

import collections
import io
import os
from collections.abc import Iterable, Iterator, Sequence

import tensorflow as tf

from garden_orbit.utils import atomic_write

RESERVED_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""The tokens a learned WordPiece vocabulary starts with, in id order."""

SENTENCEPIECE_CONTROL_SYMBOLS: tuple[str, ...] = ("[CLS]", "[SEP]", "[MASK]")
"""The control pieces of a learned SentencePiece model (ids 2, 3, 4), as ALBERT's."""

SENTENCEPIECE_MODEL_TYPES: tuple[str, ...] = ("unigram", "bpe", "char", "word")
"""The SentencePiece model types `learn_sentencepiece_model` accepts."""

_SENTENCEPIECE_EXTRA = "pip install 'garden-nlp[sentencepiece]'"
_BATCH_SIZE = 1024


def read_vocab_file(path: str) -> list[str]:
    """Reads a WordPiece vocabulary: one token per line, the line number is its id.

    Only the line terminator (`\\n` or `\\r\\n`) is removed from each line, as
    `tf.lookup.TextFileInitializer` reads whole lines.

    Args:
        path: The vocabulary file (any path `tf.io.gfile` reads).

    Returns:
        The tokens in id order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not UTF-8 text or holds no tokens, naming the file.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"vocabulary file {path!r} does not exist")
    if tf.io.gfile.isdir(path):
        raise ValueError(f"vocabulary file {path!r} is a directory, not a file")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"vocabulary file {path!r} is not UTF-8 text (line {line}: {error.reason})"
        ) from None
    if content.startswith("\ufeff"):
        content = content[1:]
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokens = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not tokens:
        raise ValueError(f"vocabulary file {path!r} is empty: expected one token per line")
    return tokens


def check_unique_tokens(tokens: Sequence[str], path: str) -> None:
    """Raises a ValueError naming `path` and the lines if a token appears twice.

    Args:
        tokens: The tokens in id order.
        path: The vocabulary's file name, for the message.
    """
    first_line: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in first_line:
            raise ValueError(
                f"vocabulary file {path!r} lists token {token!r} twice (lines "
                f"{first_line[token] + 1} and {index + 1}); every token must be unique"
            )
        first_line[token] = index


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Writes `data` to `path` under a temporary name beside it, then renames it into place.

    A reader of `path` sees either the old file or the complete new one, never a part.

    Args:
        path: The file to write; its folder is created if missing.
        data: The file's contents.
    """
    atomic_write.write_bytes(path, data)


def write_vocab_file(path: str, tokens: Sequence[str]) -> None:
    """Writes `tokens` one per line (UTF-8, `\\n` line ends) to `path`, atomically.

    Args:
        path: The vocabulary file to write.
        tokens: The tokens in id order; none may contain a line break.

    Raises:
        ValueError: If a token contains a line break, as it would shift every later id.
    """
    for index, token in enumerate(tokens):
        if "\n" in token or "\r" in token:
            raise ValueError(f"token {index} ({token!r}) contains a line break")
    write_bytes_atomically(path, "".join(f"{token}\n" for token in tokens).encode("utf-8"))


def resolve_input_files(input_files: str | Sequence[str]) -> list[str]:
    """Expands a comma-separated string or a list of paths and globs into existing files.

    Args:
        input_files: Paths or glob patterns, as a list or one comma-separated string.

    Returns:
        The files, in the order given (each glob's matches sorted).

    Raises:
        ValueError: If no file is given.
        FileNotFoundError: If a path does not exist or a glob matches nothing, naming it.
    """
    if isinstance(input_files, str):
        input_files = input_files.split(",")
    patterns = [pattern.strip() for pattern in input_files if pattern.strip()]
    if not patterns:
        raise ValueError("no input files given")
    files: list[str] = []
    for pattern in patterns:
        if any(char in pattern for char in "*?["):
            matches = sorted(tf.io.gfile.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"input files {pattern!r} match no file")
            files.extend(matches)
        elif not tf.io.gfile.exists(pattern):
            raise FileNotFoundError(f"input file {pattern!r} does not exist")
        elif tf.io.gfile.isdir(pattern):
            raise FileNotFoundError(f"input file {pattern!r} is a directory, not a text file")
        else:
            files.append(pattern)
    return files


def count_words(
    input_files: str | Sequence[str], lower_case: bool = False
) -> collections.Counter[str]:
    """Counts the words of text files, split as `BertTokenizer` splits text into words.

    Args:
        input_files: Text files (paths or globs, a list or a comma-separated string).
        lower_case: Whether to lower-case and strip accents first, as an uncased
            `BertTokenizer` does.

    Returns:
        Word counts.

    Raises:
        FileNotFoundError: If an input file is missing.
        ValueError: If the files hold no words.
    """
    from tensorflow_text.python.ops import bert_tokenizer

    files = resolve_input_files(input_files)
    splitter = bert_tokenizer.BasicTokenizer(lower_case=lower_case)
    dataset = (
        tf.data.TextLineDataset(files)
        .batch(_BATCH_SIZE)
        .map(lambda lines: splitter.tokenize(lines).flat_values)
        .prefetch(tf.data.AUTOTUNE)
    )
    counts: collections.Counter[bytes] = collections.Counter()
    for words in dataset.as_numpy_iterator():
        counts.update(words.tolist())
    if not counts:
        raise ValueError(f"input files {', '.join(map(repr, files))} hold no words")
    return collections.Counter({word.decode("utf-8"): count for word, count in counts.items()})


def learn_wordpiece_vocab(
    input_files: str | Sequence[str],
    vocab_size: int,
    *,
    lower_case: bool = False,
    reserved_tokens: Sequence[str] = RESERVED_TOKENS,
    suffix_indicator: str = "##",
    lower_thresh: int = 10,
    upper_thresh: int = 10_000_000,
    num_iterations: int = 4,
    max_input_tokens: int = 5_000_000,
    max_token_length: int = 50,
    max_unique_chars: int = 1000,
    slack_ratio: float = 0.05,
) -> list[str]:
    """Learns a BERT WordPiece vocabulary from text files.

    The learner (TF.Text's `wordpiece_tokenizer_learner_lib.learn`) searches for the token
    frequency threshold that gives between `vocab_size * (1 - slack_ratio)` and `vocab_size`
    tokens; every single character that survives `max_unique_chars`, as itself and as a
    suffix piece, is kept so that every word of the allowed alphabet can be tokenized. Small
    corpora may give fewer tokens than asked for.

    Args:
        input_files: Text files (paths or globs, a list or a comma-separated string).
        vocab_size: The largest number of tokens, reserved tokens included.
        lower_case: Whether to lower-case and strip accents before counting, for an uncased
            vocabulary; `BertTokenizer(lower_case=True)` must then read it.
        reserved_tokens: The tokens placed first, in order.
        suffix_indicator: The prefix of pieces that continue a word.
        lower_thresh: The lowest token count the threshold search tries.
        upper_thresh: The highest token count the threshold search tries.
        num_iterations: Rounds of the WordPiece learning algorithm.
        max_input_tokens: Only the most frequent this many words are used (-1: all).
        max_token_length: Words longer than this (in characters) are not counted.
        max_unique_chars: The largest alphabet: words with rarer characters are dropped.
        slack_ratio: How far below `vocab_size` the result may stay.

    Returns:
        The tokens in id order.

    Raises:
        FileNotFoundError: If an input file is missing.
        ValueError: For bad arguments or input files without words.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    reserved = list(reserved_tokens)
    if len(set(reserved)) != len(reserved):
        raise ValueError(f"reserved_tokens {reserved} lists a token twice")
    if vocab_size <= len(reserved):
        raise ValueError(
            f"vocab_size {vocab_size} leaves no room beside the {len(reserved)} reserved tokens"
        )
    if not suffix_indicator:
        raise ValueError("suffix_indicator must not be empty")
    if not 0.0 <= slack_ratio < 1.0:
        raise ValueError(f"slack_ratio must be in [0, 1); got {slack_ratio}")
    if lower_thresh < 1 or upper_thresh < lower_thresh:
        raise ValueError(
            f"need 1 <= lower_thresh <= upper_thresh; got {lower_thresh} and {upper_thresh}"
        )
    counts = count_words(input_files, lower_case=lower_case)
    vocab = learner.learn(
        counts,
        vocab_size,
        reserved,
        upper_thresh=upper_thresh,
        lower_thresh=lower_thresh,
        num_iterations=num_iterations,
        max_input_tokens=max_input_tokens,
        max_token_length=max_token_length,
        max_unique_chars=max_unique_chars,
        slack_ratio=slack_ratio,
        include_joiner_token=True,
        joiner=suffix_indicator,
    )
    return list(vocab)


def _import_sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise ImportError(
            "learning a SentencePiece model needs the sentencepiece package: "
            f"{_SENTENCEPIECE_EXTRA}"
        ) from None
    return sentencepiece


def _read_lines(files: Sequence[str]) -> Iterator[str]:
    for path in files:
        with tf.io.gfile.GFile(path, "r") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if line.strip():
                    yield line


def learn_sentencepiece_model(
    input_files: str | Sequence[str],
    vocab_size: int,
    *,
    lower_case: bool = False,
    model_type: str = "unigram",
    character_coverage: float = 0.9995,
    input_sentence_size: int = 0,
    control_symbols: Iterable[str] = SENTENCEPIECE_CONTROL_SYMBOLS,
    num_threads: int | None = None,
) -> bytes:
    """Trains a SentencePiece model on text files, with ALBERT's special pieces.

    The model has `<pad>` (id 0), `<unk>` (1), then the control pieces (by default `[CLS]`,
    `[SEP]`, `[MASK]`: ids 2, 3, 4), and no `<s>`/`</s>`, as ALBERT's models do, so
    `SentencepieceTokenizer.get_special_tokens_dict()` finds every special token.
    Normalization is SentencePiece's `nmt_nfkc`; with `lower_case` it is `nmt_nfkc_cf`,
    which also case-folds, so lower-casing is part of the model itself.

    Args:
        input_files: Text files (paths or globs, a list or a comma-separated string).
        vocab_size: The number of pieces, special pieces included.
        lower_case: Whether the model case-folds its input.
        model_type: `unigram` (ALBERT's), `bpe`, `char` or `word`.
        character_coverage: The share of characters the model covers; rarer ones map to
            `<unk>`.
        input_sentence_size: How many lines (sampled) to train on; 0 uses all.
        control_symbols: The control pieces after `<pad>` and `<unk>`.
        num_threads: Trainer threads; None uses the machine's CPU count.

    Returns:
        The serialized model (the contents of a `.model` file).

    Raises:
        ImportError: If the `sentencepiece` package is missing (install the extra
            `garden-nlp[sentencepiece]`).
        FileNotFoundError: If an input file is missing.
        ValueError: For bad arguments, or a corpus too small for `vocab_size`.
    """
    sentencepiece = _import_sentencepiece()
    if model_type not in SENTENCEPIECE_MODEL_TYPES:
        raise ValueError(
            f"model_type {model_type!r} is not one of {', '.join(SENTENCEPIECE_MODEL_TYPES)}"
        )
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be at least 3; got {vocab_size}")
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(f"character_coverage must be in (0, 1]; got {character_coverage}")
    files = resolve_input_files(input_files)
    lines = _read_lines(files)
    first = next(lines, None)
    if first is None:
        raise ValueError(f"input files {', '.join(map(repr, files))} hold no text")

    def sentences() -> Iterator[str]:
        yield first
        yield from lines

    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=sentences(),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            normalization_rule_name="nmt_nfkc_cf" if lower_case else "nmt_nfkc",
            pad_id=0,
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
            control_symbols=list(control_symbols),
            num_threads=num_threads or os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        if "]" in message:
            message = message.rsplit("]", 1)[-1].strip()
        raise ValueError(f"SentencePiece training failed: {message}") from None
    return model.getvalue()
