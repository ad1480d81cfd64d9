"""`BertTokenizer`: BERT's WordPiece tokenization of raw text, as a Keras layer.

Model Garden's `official.nlp.modeling.layers.BertTokenizer`, on Keras 3. The vocabulary
file is read once, when the layer is built; the tokens live in the layer from then on
(inside TF.Text's FastWordpiece model, or in a lookup table of constants), so a
SavedModel that calls the layer carries them and never reads the file again.

Two TF.Text implementations back the layer, chosen at construction:

- `tensorflow_text.FastBertTokenizer` (normalization, word splitting and WordPiece in one
  C++ pass; several times faster), whenever it gives the same tokens as
  `tensorflow_text.BertTokenizer`: for the default options and `suffix_indicator`,
  `max_bytes_per_word`, `unknown_token`, and a vocabulary without whitespace inside
  tokens. Two differences remain, both in FastBertTokenizer's favour:
  - Cased (`lower_case=False`): it splits words on every Unicode space (such as U+00A0
    no-break space or U+3000 ideographic space), as original BERT does, where
    `tensorflow_text.BertTokenizer` splits on ASCII whitespace only. (Uncased, both
    normalize these to spaces first and agree.)
  - Offsets: it reports byte offsets into the input strings; `tensorflow_text.BertTokenizer`
    reports them into its normalized text, which differs from the input wherever
    lower-casing removes accents or changes a character's length.
- `tensorflow_text.BertTokenizer` (MG's choice), when `tokenizer_kwargs` asks for an option
  FastBertTokenizer lacks (`max_chars_per_token`, `split_unknown_characters`,
  `keep_whitespace`, `normalization_form`, `preserve_unused_token`), or when a vocabulary
  token contains whitespace (FastBertTokenizer would match it across a word break).

`uses_fast_bert_tokenizer` tells which one a layer uses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from garden_nlp.text.vocab import check_unique_tokens, read_vocab_file

_logger = logging.getLogger(__name__)

SPECIAL_TOKENS: dict[str, str] = {
    "start_of_sequence_id": "[CLS]",
    "end_of_segment_id": "[SEP]",
    "padding_id": "[PAD]",
    "mask_id": "[MASK]",
}
"""The keys of `get_special_tokens_dict()` and the WordPiece tokens they name."""

# Options of `tensorflow_text.BertTokenizer` the layer forwards, with their defaults.
_TOKENIZER_OPTIONS: dict[str, Any] = {
    "suffix_indicator": "##",
    "max_bytes_per_word": 100,
    "unknown_token": "[UNK]",
    "lower_case": False,
    "max_chars_per_token": None,
    "split_unknown_characters": False,
    "keep_whitespace": False,
    "normalization_form": None,
    "preserve_unused_token": False,
}
# The options FastBertTokenizer has too (`lower_case` as `lower_case_nfd_strip_accents`).
_FAST_OPTIONS = ("suffix_indicator", "max_bytes_per_word", "unknown_token", "lower_case")


def infer_lower_case(vocab_file: str, tokens: list[str]) -> bool:
    """Guesses whether a WordPiece vocabulary is uncased (wants lower-cased input).

    Model Garden's rule first: `uncased` in the path means True (as in
    `uncased_L-12_H-768_A-12/vocab.txt`), then `cased` in the path means False. Otherwise
    the tokens decide: a vocabulary without any upper-case letter outside bracketed special
    tokens (`[CLS]`, `[unused0]`, `<pad>`, ...) is uncased.

    Args:
        vocab_file: The vocabulary's path.
        tokens: Its tokens.

    Returns:
        True for an uncased vocabulary.
    """
    path = vocab_file.lower()
    if "uncased" in path:
        return True
    if "cased" in path:
        return False
    for token in tokens:
        if len(token) > 2 and token[0] + token[-1] in ("[]", "<>"):
            continue
        if any(char.isupper() for char in token):
            return False
    return True


@keras.saving.register_keras_serializable(package="garden_nlp")
class BertTokenizer(keras.layers.Layer):
    """Splits strings into BERT WordPiece token ids, grouped by word.

    Call it on a string tensor of shape `[batch_size]`; it returns an int32 `RaggedTensor`
    `[batch_size, (words), (pieces_per_word)]`: `tokens[i, j, k]` is the id of the k-th
    piece of the j-th word of the i-th string. With `tokenize_with_offsets=True` it
    returns `(tokens, start_offsets, limit_offsets)`, the offsets int64 `RaggedTensor`s
    of the same shape holding each piece's byte range in its input string.

    It runs eagerly, inside `tf.function`, `tf.data.Dataset.map` and exported SavedModels
    (which carry the vocabulary; the file is not read again).

    Example:

    ```python
    tokenizer = BertTokenizer(vocab_file="uncased_L-12_H-768_A-12/vocab.txt")
    tokens = tokenizer(tf.constant(["Hello world!"]))  # [[[7592], [2088], [999]]]
    packer = BertPackInputs(128, special_tokens_dict=tokenizer.get_special_tokens_dict())
    inputs = packer(tokens)  # input_word_ids, input_mask, input_type_ids: [1, 128]
    ```

    Args:
        vocab_file: The WordPiece vocabulary: a UTF-8 text file, one token per line, the
            line number being the id (any path `tf.io.gfile` reads). It must hold the
            unknown token (`[UNK]` by default) and no token twice.
        lower_case: Whether to lower-case the text and strip accents before tokenization,
            as the vocabulary was made. None takes `tokenizer_kwargs["lower_case"]` if set,
            else guesses from the vocabulary (see `infer_lower_case`: `uncased` in the path
            means True, `cased` False, otherwise True exactly when no token has an
            upper-case letter).
        tokenize_with_offsets: Whether to return `(tokens, start_offsets, limit_offsets)`
            instead of `tokens`.
        tokenizer_kwargs: Options of `tensorflow_text.BertTokenizer`: `suffix_indicator`
            (default `##`), `max_bytes_per_word` (100), `unknown_token` (`[UNK]`),
            `lower_case`, `max_chars_per_token`, `split_unknown_characters`,
            `keep_whitespace`, `normalization_form`, `preserve_unused_token`. The last
            five select `tensorflow_text.BertTokenizer` (see the module docstring).
        **kwargs: Arguments of `keras.layers.Layer` (such as `name`).

    Raises:
        FileNotFoundError: If `vocab_file` does not exist.
        ValueError: If the vocabulary is empty, lists a token twice or lacks the unknown
            token, or `tokenizer_kwargs` has an unknown key (each message names the file
            or the key).
    """

    def __init__(
        self,
        vocab_file: str,
        lower_case: bool | None = None,
        tokenize_with_offsets: bool = False,
        tokenizer_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Strings in, ragged ids out: no conversion of the inputs to float tensors.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

        options = dict(tokenizer_kwargs or {})
        unknown = sorted(set(options) - set(_TOKENIZER_OPTIONS))
        if unknown:
            raise ValueError(
                f"BertTokenizer: unknown tokenizer_kwargs {unknown}; expected some of "
                f"{', '.join(_TOKENIZER_OPTIONS)} (the output is always int32 ids)"
            )
        self.vocab_file = vocab_file
        self.tokenize_with_offsets = bool(tokenize_with_offsets)
        self.tokenizer_kwargs = dict(tokenizer_kwargs or {})

        tokens = read_vocab_file(vocab_file)
        check_unique_tokens(tokens, vocab_file)
        if lower_case is None:
            lower_case = options.get("lower_case")
        if lower_case is None:
            lower_case = infer_lower_case(vocab_file, tokens)
            _logger.info("BertTokenizer: lower_case=%s inferred for %s", lower_case, vocab_file)
        self.lower_case = bool(lower_case)
        options = {**_TOKENIZER_OPTIONS, **options, "lower_case": self.lower_case}
        if not options["suffix_indicator"]:
            raise ValueError("BertTokenizer: tokenizer_kwargs['suffix_indicator'] is empty")
        if options["unknown_token"] not in tokens:
            raise ValueError(
                f"vocabulary file {vocab_file!r} has no unknown token "
                f"{options['unknown_token']!r}, which words outside the vocabulary map to"
            )

        self._vocab_size = len(tokens)
        self._special_tokens_dict = self._find_special_tokens(tokens)
        self._use_fast = all(
            options[key] == default
            for key, default in _TOKENIZER_OPTIONS.items()
            if key not in _FAST_OPTIONS
        ) and not any(any(char.isspace() for char in token) for token in tokens)
        if self._use_fast:
            self._tokenizer = tf_text.FastBertTokenizer(
                vocab=tokens,
                suffix_indicator=options["suffix_indicator"],
                max_bytes_per_word=options["max_bytes_per_word"],
                token_out_type=tf.int32,
                unknown_token=options["unknown_token"],
                lower_case_nfd_strip_accents=self.lower_case,
            )
            # FastBertTokenizer returns the pieces of each string in one flat row. WordPiece
            # starts every word with a piece that is not a suffix piece (`[UNK]` included)
            # and continues it with suffix pieces only (such as `##ing`), so the suffix
            # pieces mark exactly where words continue.
            suffix = options["suffix_indicator"]
            self._starts_word = np.array(
                [not (token.startswith(suffix) and len(token) > len(suffix)) for token in tokens]
            )
        else:
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(tokens, tf.string), tf.range(len(tokens), dtype=tf.int64)
                ),
                default_value=-1,
            )
            self._tokenizer = tf_text.BertTokenizer(
                table, token_out_type=tf.int64, **{k: options[k] for k in _TOKENIZER_OPTIONS}
            )
        self.built = True

    @property
    def vocab_size(self) -> int:
        """The number of tokens in the vocabulary (one past the largest id)."""
        return self._vocab_size

    @property
    def uses_fast_bert_tokenizer(self) -> bool:
        """True if `tensorflow_text.FastBertTokenizer` tokenizes, False for `BertTokenizer`."""
        return self._use_fast

    def get_special_tokens_dict(self) -> dict[str, int]:
        """The ids of the special tokens, keyed by what they are for.

        Returns:
            A dict of Python ints: `vocab_size`, and `start_of_sequence_id` (`[CLS]`),
            `end_of_segment_id` (`[SEP]`), `padding_id` (`[PAD]`), `mask_id` (`[MASK]`)
            for those of the tokens the vocabulary has. Pass it to
            `BertPackInputs(special_tokens_dict=...)`.
        """
        return dict(self._special_tokens_dict)

    def _find_special_tokens(self, tokens: list[str]) -> dict[str, int]:
        ids = {token: index for index, token in enumerate(tokens)}
        result = {"vocab_size": len(tokens)}
        for key, token in SPECIAL_TOKENS.items():
            if token in ids:
                result[key] = ids[token]
            else:
                _logger.warning(
                    "vocabulary file %s has no %s token, so no %s", self.vocab_file, token, key
                )
        return result

    def call(self, inputs: Any) -> tf.RaggedTensor | tuple[tf.RaggedTensor, ...]:
        """Tokenizes a batch of strings.

        Args:
            inputs: A string tensor of shape `[batch_size]` (or a list of strings).

        Returns:
            `tokens`, or `(tokens, start_offsets, limit_offsets)` with offsets; see the
            class docstring.
        """
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        if inputs.shape.rank != 1:
            raise ValueError(
                f"BertTokenizer expects a batch of strings of shape [batch_size]; got shape "
                f"{inputs.shape}"
            )
        if self._use_fast:
            return self._call_fast(inputs)
        if self.tokenize_with_offsets:
            tokens, starts, limits = self._tokenizer.tokenize_with_offsets(inputs)
            tokens = tokens.with_flat_values(tf.cast(tokens.flat_values, tf.int32))
            return (
                _with_batch_size(tokens, inputs),
                _with_batch_size(starts, inputs),
                _with_batch_size(limits, inputs),
            )
        tokens = self._tokenizer.tokenize(inputs)
        tokens = tokens.with_flat_values(tf.cast(tokens.flat_values, tf.int32))
        return _with_batch_size(tokens, inputs)

    def _call_fast(self, inputs: tf.Tensor):
        if self.tokenize_with_offsets:
            pieces, starts, limits = self._tokenizer.tokenize_with_offsets(inputs)
        else:
            pieces = self._tokenizer.tokenize(inputs)
        ids = pieces.flat_values
        starts_word = tf.gather(tf.constant(self._starts_word), ids)
        word_starts = tf.where(starts_word)[:, 0]
        # Word ends before each string's end: word count so far, at each string boundary.
        words_so_far = tf.concat([[0], tf.cumsum(tf.cast(starts_word, tf.int64))], axis=0)
        string_splits = tf.gather(words_so_far, pieces.row_splits)

        def group(values: tf.Tensor) -> tf.RaggedTensor:
            words = tf.RaggedTensor.from_row_starts(values, word_starts, validate=False)
            return _with_batch_size(
                tf.RaggedTensor.from_row_splits(words, string_splits, validate=False), inputs
            )

        if self.tokenize_with_offsets:
            return group(ids), group(starts.flat_values), group(limits.flat_values)
        return group(ids)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            vocab_file=self.vocab_file,
            lower_case=self.lower_case,
            tokenize_with_offsets=self.tokenize_with_offsets,
            tokenizer_kwargs=dict(self.tokenizer_kwargs) or None,
        )
        return config


def _with_batch_size(ragged: tf.RaggedTensor, inputs: tf.Tensor) -> tf.RaggedTensor:
    """Gives `ragged` the batch size of `inputs` in its shape (shape inference loses it)."""
    batch_size = inputs.shape[0]
    if batch_size is None:
        batch_size = tf.shape(inputs, out_type=ragged.row_splits.dtype)[0]
    row_splits = tf.reshape(ragged.row_splits, [batch_size + 1])
    return tf.RaggedTensor.from_row_splits(ragged.values, row_splits, validate=False)
