"""Tokenizers for input pipelines and for offline data conversion.

- `build_tokenizer`: the `garden_nlp.text` tokenizer layer (`BertTokenizer` for WordPiece,
  `SentencepieceTokenizer` for SentencePiece) that a config's `tokenization`, vocabulary
  and lower-casing describe; it runs inside `tf.data` maps.
- `FullTokenizer`: the same tokenizers used eagerly from Python, with token strings and
  id conversions, for converting SQuAD, tagging and classification data into TFRecords
  (Model Garden's `tokenization.FullTokenizer`, on the `garden_nlp.text` layers so that
  offline conversion and in-pipeline tokenization agree exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from garden_core.config import ConfigError
from garden_nlp.configs.data import TOKENIZATIONS

_SENTENCEPIECE_SPACE = "\u2581"
_BATCH = 512


def build_tokenizer(
    tokenization: str, vocab_file: str, lower_case: bool, field: str = "vocab_file"
) -> Any:
    """The tokenizer layer for `tokenization` (`WordPiece` or `SentencePiece`).

    Args:
        tokenization: `WordPiece` (a vocabulary file, one token a line) or
            `SentencePiece` (a SentencePiece model file).
        vocab_file: The vocabulary or SentencePiece model file.
        lower_case: Lower-case (and strip accents from) the text first.
        field: The config field that named `vocab_file`, for error messages.

    Returns:
        A `garden_nlp.text.BertTokenizer` (strings `[batch]` to ids
        `[batch, (words), (pieces)]`) or `SentencepieceTokenizer` (ids
        `[batch, (pieces)]`).

    Raises:
        ConfigError: For an unknown `tokenization`, or a missing `vocab_file`.
    """
    if tokenization not in TOKENIZATIONS:
        raise ConfigError(
            f"`tokenization` = {tokenization!r}: expected one of {', '.join(TOKENIZATIONS)}"
        )
    if not vocab_file:
        raise ConfigError(f"`{field}` is not set; name the {tokenization} vocabulary file")
    if not tf.io.gfile.exists(vocab_file):
        raise ConfigError(f"`{field}` = {vocab_file!r}: the file does not exist")
    from garden_nlp import text  # Loads tensorflow_text only where text is tokenized.

    if tokenization == "WordPiece":
        return text.BertTokenizer(vocab_file=vocab_file, lower_case=lower_case)
    # ALBERT's SentencePiece models expect accents stripped from lower-cased text.
    return text.SentencepieceTokenizer(
        lower_case=lower_case, model_file_path=vocab_file, strip_diacritics=True
    )


def special_token_ids(tokenizer: Any, vocab_file: str, names: Sequence[str]) -> dict[str, int]:
    """The ids of the special tokens `names` (keys of `get_special_tokens_dict`).

    Raises:
        ConfigError: If the vocabulary lacks one of them, naming the file and the token.
    """
    special = tokenizer.get_special_tokens_dict()
    tokens = {
        "start_of_sequence_id": "[CLS]",
        "end_of_segment_id": "[SEP]",
        "padding_id": "[PAD]",
        "mask_id": "[MASK]",
    }
    missing = [tokens.get(name, name) for name in names if name not in special]
    if missing:
        raise ConfigError(
            f"the vocabulary {vocab_file!r} has no {', '.join(missing)} token, which this "
            "input pipeline needs"
        )
    return {name: int(special[name]) for name in names}


class FullTokenizer:
    """Eager tokenization to token strings and ids, for converting data offline.

    Args:
        vocab_file: The WordPiece vocabulary (one token a line), or the SentencePiece model
            file when `tokenization` is `SentencePiece`.
        lower_case: Lower-case (and strip accents from) the text first.
        tokenization: `WordPiece` or `SentencePiece`.

    Raises:
        ConfigError: For an unknown `tokenization` or a missing file.
    """

    def __init__(self, vocab_file: str, lower_case: bool = True, tokenization: str = "WordPiece"):
        self.layer = build_tokenizer(tokenization, vocab_file, lower_case)
        self.tokenization = tokenization
        self.vocab_file = vocab_file
        self.lower_case = lower_case
        if tokenization == "WordPiece":
            from garden_nlp.text.vocab import read_vocab_file

            self._id_to_token = read_vocab_file(vocab_file)
        else:
            import sentencepiece

            processor = sentencepiece.SentencePieceProcessor()
            with tf.io.gfile.GFile(vocab_file, "rb") as f:
                processor.LoadFromSerializedProto(f.read())
            self._id_to_token = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]
        self._token_to_id = {token: i for i, token in enumerate(self._id_to_token)}
        self.special_tokens = self.layer.get_special_tokens_dict()

    @property
    def vocab_size(self) -> int:
        """The number of tokens in the vocabulary."""
        return len(self._id_to_token)

    def token_id(self, token: str) -> int:
        """The id of one token string (such as `[CLS]`).

        Raises:
            ValueError: If the vocabulary lacks it, naming the vocabulary file.
        """
        if token not in self._token_to_id:
            raise ValueError(f"the vocabulary {self.vocab_file!r} has no token {token!r}")
        return self._token_to_id[token]

    def tokenize_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids of each text (all word pieces of all its words, in order)."""
        results: list[list[int]] = []
        for start in range(0, len(texts), _BATCH):
            chunk = list(texts[start : start + _BATCH])
            if not chunk:
                continue
            ids = self.layer(tf.constant(chunk, dtype=tf.string))
            if ids.shape.rank > 2:
                ids = ids.merge_dims(1, -1)
            results.extend([int(i) for i in row] for row in ids.to_list())
        return results

    def tokenize_batch(self, texts: Sequence[str]) -> list[list[str]]:
        """The token strings of each text."""
        return [self.convert_ids_to_tokens(ids) for ids in self.tokenize_ids(texts)]

    def tokenize(self, text: str) -> list[str]:
        """The token strings of one text."""
        return self.tokenize_batch([text])[0]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Token strings of ids."""
        return [self._id_to_token[i] for i in ids]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of token strings (each must be in the vocabulary)."""
        return [self.token_id(token) for token in tokens]

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Joins tokens into text: WordPiece `##` continuations and SentencePiece `▁`s."""
        if self.tokenization == "WordPiece":
            text = " ".join(tokens).replace(" ##", "").replace("##", "")
        else:
            text = "".join(tokens).replace(_SENTENCEPIECE_SPACE, " ")
        return " ".join(text.split())
