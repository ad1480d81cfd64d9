"""`SentencepieceTokenizer`: SentencePiece tokenization of raw text, as a Keras layer.

Model Garden's `official.nlp.modeling.layers.SentencepieceTokenizer` (the tokenizer of
ALBERT and other SentencePiece models), on Keras 3, over `tensorflow_text.
SentencepieceTokenizer`. The serialized model is held by the layer (and by its config),
so a SavedModel that calls the layer carries it and never reads the model file again.

`tensorflow_text.FastSentencepieceTokenizer` is not used: it is faster but breaks ties
between equally scored segmentations differently (a few sentences in a thousand get other
pieces on a unigram model), and it supports neither sampling nor offsets.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from garden_nlp.text.bert_tokenizer import _with_batch_size

_logger = logging.getLogger(__name__)

SPECIAL_PIECES: dict[str, str] = {
    "start_of_sequence_id": "[CLS]",
    "end_of_segment_id": "[SEP]",
    "padding_id": "<pad>",
    "mask_id": "[MASK]",
}
"""The keys of `get_special_tokens_dict()` and the pieces they name, as in ALBERT's models."""


def _model_bytes(model_file_path: str | None, model_serialized_proto: bytes | str | None) -> bytes:
    if bool(model_file_path) == bool(model_serialized_proto):
        raise ValueError(
            "SentencepieceTokenizer: pass exactly one of model_file_path and model_serialized_proto"
        )
    if model_file_path:
        if not tf.io.gfile.exists(model_file_path):
            raise FileNotFoundError(f"SentencePiece model file {model_file_path!r} does not exist")
        with tf.io.gfile.GFile(model_file_path, "rb") as f:
            data = f.read()
        if not data:
            raise ValueError(f"SentencePiece model file {model_file_path!r} is empty")
        return data
    if isinstance(model_serialized_proto, str):
        try:
            return base64.b64decode(model_serialized_proto.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError(
                "SentencepieceTokenizer: model_serialized_proto as a str must be the base64 "
                "text that get_config() writes; pass the model's bytes otherwise"
            ) from None
    return bytes(model_serialized_proto)


@keras.saving.register_keras_serializable(package="garden_nlp")
class SentencepieceTokenizer(keras.layers.Layer):
    """Splits strings into SentencePiece ids.

    Call it on a string tensor of shape `[batch_size]`; it returns an int32 `RaggedTensor`
    `[batch_size, (pieces)]`. With `tokenize_with_offsets=True` it returns
    `(tokens, start_offsets, limit_offsets)`, the offsets int64 `RaggedTensor`s of the same
    shape holding each piece's byte range in its input string.

    Example:

    ```python
    tokenizer = SentencepieceTokenizer(lower_case=True, model_file_path="30k-clean.model")
    packer = BertPackInputs(128, special_tokens_dict=tokenizer.get_special_tokens_dict())
    inputs = packer(tokenizer(tf.constant(["Hello world!"])))
    ```

    Args:
        lower_case: Whether to case-fold the text (`tensorflow_text.case_fold_utf8`) before
            tokenization, as ALBERT's public models expect. A model that case-folds itself
            (normalization `nmt_nfkc_cf`) does not need it.
        model_file_path: The SentencePiece `.model` file (any path `tf.io.gfile` reads).
        model_serialized_proto: Instead of the file: the model's bytes (or the base64 text
            of them that `get_config()` writes). Exactly one of the two is required.
        tokenize_with_offsets: Whether to return `(tokens, start_offsets, limit_offsets)`.
        nbest_size: Sampling: 0 or 1 tokenizes deterministically (the best segmentation);
            n > 1 samples from the n best; a negative value samples from all of them
            (subword regularization).
        alpha: The inverse temperature of that sampling.
        strip_diacritics: Whether to remove accents (NFD, then drop combining marks)
            before tokenization. Offsets cannot be returned then.
        **kwargs: Arguments of `keras.layers.Layer` (such as `name`).

    Raises:
        ValueError: If neither or both of the model arguments are given, the model cannot
            be read, or `tokenize_with_offsets` is combined with `strip_diacritics`.
        FileNotFoundError: If `model_file_path` does not exist.
    """

    def __init__(
        self,
        lower_case: bool,
        model_file_path: str | None = None,
        model_serialized_proto: bytes | str | None = None,
        tokenize_with_offsets: bool = False,
        nbest_size: int = 0,
        alpha: float = 1.0,
        strip_diacritics: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if tokenize_with_offsets and strip_diacritics:
            raise ValueError(
                "SentencepieceTokenizer: tokenize_with_offsets is not supported with "
                "strip_diacritics=True (removing accents drops bytes, so offsets are lost)"
            )
        self._model = _model_bytes(model_file_path, model_serialized_proto)
        self.lower_case = bool(lower_case)
        self.tokenize_with_offsets = bool(tokenize_with_offsets)
        self.nbest_size = int(nbest_size)
        self.alpha = float(alpha)
        self.strip_diacritics = bool(strip_diacritics)
        source = repr(model_file_path) if model_file_path else "model_serialized_proto"
        try:
            self._tokenizer = tf_text.SentencepieceTokenizer(
                model=self._model, out_type=tf.int32, nbest_size=self.nbest_size, alpha=self.alpha
            )
            with tf.init_scope():
                self._vocab_size = int(self._tokenizer.vocab_size())
                self._special_tokens_dict = self._find_special_tokens(source)
        except (tf.errors.InvalidArgumentError, tf.errors.InternalError) as error:
            reason = error.message.strip().splitlines()[0] if error.message else "unreadable"
            raise ValueError(f"SentencePiece model {source} cannot be loaded: {reason}") from None
        self.built = True

    def _find_special_tokens(self, source: str) -> dict[str, int]:
        pieces = list(SPECIAL_PIECES.values())
        ids = self._tokenizer.string_to_id(tf.constant(pieces)).numpy().tolist()
        found = self._tokenizer.id_to_string(tf.constant(ids, tf.int32)).numpy().tolist()
        result = {"vocab_size": self._vocab_size}
        for (key, piece), token_id, back in zip(SPECIAL_PIECES.items(), ids, found, strict=True):
            if back.decode("utf-8") == piece:
                result[key] = int(token_id)
            else:
                _logger.warning(
                    "SentencePiece model %s has no %s piece, so no %s", source, piece, key
                )
        return result

    @property
    def vocab_size(self) -> int:
        """The number of pieces of the model."""
        return self._vocab_size

    def get_special_tokens_dict(self) -> dict[str, int]:
        """The ids of the special pieces, keyed by what they are for.

        Returns:
            A dict of Python ints: `vocab_size`, and `start_of_sequence_id` (`[CLS]`),
            `end_of_segment_id` (`[SEP]`), `padding_id` (`<pad>`), `mask_id` (`[MASK]`)
            for those of the pieces the model has. Pass it to
            `BertPackInputs(special_tokens_dict=...)`.
        """
        return dict(self._special_tokens_dict)

    def call(self, inputs: Any) -> tf.RaggedTensor | tuple[tf.RaggedTensor, ...]:
        """Tokenizes a batch of strings.

        Args:
            inputs: A string tensor of shape `[batch_size]` (or a list of strings).

        Returns:
            `tokens`, or `(tokens, start_offsets, limit_offsets)` with offsets.
        """
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        if inputs.shape.rank != 1:
            raise ValueError(
                "SentencepieceTokenizer expects a batch of strings of shape [batch_size]; "
                f"got shape {inputs.shape}"
            )
        if self.strip_diacritics:
            inputs = tf_text.normalize_utf8(inputs, "NFD")
            inputs = tf.strings.regex_replace(inputs, r"\p{Mn}", "")
        if self.lower_case:
            inputs = tf_text.case_fold_utf8(inputs)
        if self.tokenize_with_offsets:
            tokens, starts, limits = self._tokenizer.tokenize_with_offsets(inputs)
            return (
                _with_batch_size(tokens, inputs),
                _with_batch_size(starts, inputs),
                _with_batch_size(limits, inputs),
            )
        return _with_batch_size(self._tokenizer.tokenize(inputs), inputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            lower_case=self.lower_case,
            model_serialized_proto=base64.b64encode(self._model).decode("ascii"),
            tokenize_with_offsets=self.tokenize_with_offsets,
            nbest_size=self.nbest_size,
            alpha=self.alpha,
            strip_diacritics=self.strip_diacritics,
        )
        return config
