"""Input pipeline of BERT pretraining from raw text, with masks drawn anew every epoch.

`BertPretrainTextDataLoader` reads documents (see `BertPretrainTextDataConfig`: plain
text with one sentence per line and blank lines between documents, TFRecords of string
features, or the string features of a prepared TFDS dataset such as
`wikipedia/20201201.en`), and builds masked-LM examples in the pipeline:

1. With next-sentence labels, `doc_batch_size` documents at a time are split into
   sentences and `next_sentence_pairs` pairs each sentence with the next one of its
   document (label 0) or a random sentence of another document (label 1).
2. Segments are tokenized (`garden_nlp.text` tokenizers), truncated round-robin to
   `seq_length` less the special tokens, and packed as `[CLS] A [SEP] B [SEP]`.
3. `tensorflow_text.mask_language_model` selects `masking_rate` of the tokens (never
   `[CLS]`, `[SEP]` or `[PAD]`; at most `max_predictions_per_seq`; whole words with
   `use_whole_word_masking`) and replaces 80% of them with `[MASK]`, 10% with a random
   token and leaves 10% unchanged (`random_token_rate`, `unchanged_token_rate`). The
   random draws run in the `tf.data` map, so every epoch sees new masks.

Batches are `(features, labels)` laid out as `BertPretrainDataLoader`'s: features
`input_word_ids`, `input_mask`, `input_type_ids`, `masked_lm_positions`; labels
`masked_lm_ids`, `masked_lm_weights` and, with next-sentence labels,
`next_sentence_labels`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from garden_core.config import ConfigError
from garden_core.data import InputReader
from garden_nlp.configs.data import FILE_TYPES, BertPretrainTextDataConfig
from garden_nlp.data import tfrecord_lib
from garden_nlp.data.tokenization import build_tokenizer, special_token_ids

TEXT_FIELD = "text"
"""The record key of a document read from a `txt` file."""

_TEXT_FILE_TYPES = ("txt",)


def documents_from_text_file(path: tf.Tensor | str) -> tf.data.Dataset:
    """The documents of a text file: one sentence a line, documents between blank lines.

    Args:
        path: The file path (a string or a scalar string tensor).

    Returns:
        A dataset of scalar strings, one per document, its sentences joined by newlines
        (lines are stripped; runs of blank lines count as one separator).
    """
    lines = tf.data.TextLineDataset(path).concatenate(
        tf.data.Dataset.from_tensors(tf.constant("", tf.string))
    )

    def step(document: tf.Tensor, line: tf.Tensor):
        line = tf.strings.strip(line)
        blank = tf.equal(line, "")
        extended = tf.where(
            tf.equal(document, ""), line, tf.strings.join([document, line], separator="\n")
        )
        finished = tf.logical_and(blank, tf.not_equal(document, ""))
        return tf.where(blank, tf.constant(""), extended), (finished, document)

    documents = lines.scan(tf.constant("", tf.string), step)
    return documents.filter(lambda finished, _: finished).map(lambda _, document: document)


def split_sentences(documents: tf.Tensor) -> tf.RaggedTensor:
    """Splits documents `[docs]` on newlines into sentences `[docs, (sentences)]`.

    Sentences are stripped and empty ones dropped.
    """
    sentences = tf.strings.strip(tf.strings.split(documents, sep="\n"))
    return tf.ragged.boolean_mask(sentences, tf.strings.length(sentences) > 0)


def next_sentence_pairs(
    sentences: tf.RaggedTensor, random_next_rate: float = 0.5
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Pairs every sentence with its successor or a random sentence (next-sentence task).

    Segment B of a sentence is the next sentence of its document with probability
    `1 - random_next_rate`, else (and always for a document's last sentence) a sentence
    drawn uniformly from the other documents of the batch; a batch of a single document
    draws from that document.

    Args:
        sentences: Strings `[docs, (sentences)]`.
        random_next_rate: The share of pairs whose segment B is random.

    Returns:
        `(first, second, labels)`, each `[total_sentences]`: segment A, segment B, and
        int32 labels, 0 when B is A's next sentence and 1 when it is random (original
        BERT's labels).
    """
    flat = sentences.flat_values
    total = tf.size(flat, out_type=tf.int64)
    rows = sentences.value_rowids()
    starts = tf.gather(sentences.row_starts(), rows)
    lengths = tf.gather(sentences.row_lengths(), rows)
    index = tf.range(total, dtype=tf.int64)
    has_next = index + 1 < starts + lengths
    is_random = tf.logical_or(
        tf.random.uniform(tf.shape(flat)) < random_next_rate, tf.logical_not(has_next)
    )
    # Draw from the sentences outside the own document, skipping over its range.
    others = total - lengths
    single_document = tf.equal(others, 0)
    pool = tf.where(single_document, total, others)
    draw = tf.cast(
        tf.math.floor(tf.random.uniform(tf.shape(flat)) * tf.cast(pool, tf.float32)), tf.int64
    )
    draw = tf.minimum(draw, tf.maximum(pool - 1, 0))
    random_index = tf.where(single_document, draw, tf.where(draw < starts, draw, draw + lengths))
    next_index = tf.minimum(index + 1, tf.maximum(total - 1, 0))
    second = tf.gather(flat, tf.where(is_random, random_index, next_index))
    return flat, second, tf.cast(is_random, tf.int32)


def _ragged_row_cumsum(values: tf.RaggedTensor) -> tf.RaggedTensor:
    """Cumulative sums along each row of a 2-D ragged tensor."""
    flat = values.flat_values
    running = tf.cumsum(flat)
    before_row = tf.gather(tf.concat([tf.zeros([1], flat.dtype), running], 0), values.row_starts())
    return values.with_flat_values(running - tf.gather(before_row, values.value_rowids()))


class WholeWordItemSelector(tf_text.RandomItemSelector):
    """Selects whole words for masking, at most `max_pieces` word pieces per sequence.

    A `tensorflow_text.RandomItemSelector` over `[batch, (words), (pieces)]` ids: words
    are drawn at `selection_rate`; selected words past the piece budget (in sequence
    order) are dropped, so no sequence has more masked pieces than it can predict.

    Args:
        max_pieces: The most word pieces selected per sequence.
        selection_rate: The share of selectable words drawn.
        unselectable_ids: Ids of tokens never selected (special tokens).
    """

    def __init__(self, max_pieces: int, selection_rate: float, unselectable_ids: Sequence[int]):
        super().__init__(max_pieces, selection_rate, unselectable_ids=list(unselectable_ids))
        self._max_pieces = max_pieces

    def get_selection_mask(self, input_ids: tf.RaggedTensor, axis: int) -> tf.RaggedTensor:
        selected = super().get_selection_mask(input_ids, axis)
        if input_ids.ragged_rank < 2:
            return selected
        pieces = input_ids.row_lengths(axis=2)
        counted = selected.with_flat_values(tf.where(selected.flat_values, pieces.flat_values, 0))
        within = _ragged_row_cumsum(counted).flat_values <= self._max_pieces
        return selected.with_flat_values(tf.logical_and(selected.flat_values, within))


class BertPretrainTextDataLoader:
    """Builds dynamically masked pretraining examples from raw text.

    Args:
        params: The `BertPretrainTextDataConfig`.

    Raises:
        ConfigError: For an unknown `file_type` or `tokenization`, several text fields with
            next-sentence labels, whole-word masking with SentencePiece, replacement rates
            above 1 in sum, a vocabulary without `[CLS]`, `[SEP]`, `[PAD]` or `[MASK]`, or
            `tfds_as_supervised` with a TFDS source. `load` raises it for text fields that
            a TFDS dataset lacks or that are not string features.
    """

    def __init__(self, params: BertPretrainTextDataConfig):
        if params.file_type not in _TEXT_FILE_TYPES + FILE_TYPES:
            raise ConfigError(
                f"`file_type` = {params.file_type!r}: expected one of "
                f"{', '.join(_TEXT_FILE_TYPES + FILE_TYPES)}"
            )
        # A TFDS dataset holds its documents in features; `file_type` names files only.
        self._text_files = params.file_type in _TEXT_FILE_TYPES and not params.tfds_name
        if params.tfds_name and params.tfds_as_supervised:
            raise ConfigError(
                "`tfds_as_supervised` is true: the documents are read from the TFDS feature "
                "dict by `text_field_names`; set it to false"
            )
        fields = params.text_field_names or []
        if not self._text_files:
            if not fields:
                raise ConfigError("`text_field_names` is empty; name the text features")
            if len(fields) > 1 and params.use_next_sentence_label:
                raise ConfigError(
                    f"`text_field_names` = {fields!r}: next-sentence labels are drawn from one "
                    "text field; name one, or set `use_next_sentence_label: false`"
                )
        if params.use_whole_word_masking and params.tokenization != "WordPiece":
            raise ConfigError(
                "`use_whole_word_masking` needs `tokenization: WordPiece` (words are groups "
                "of word pieces)"
            )
        if params.random_token_rate + params.unchanged_token_rate > 1:
            raise ConfigError(
                f"`random_token_rate` ({params.random_token_rate}) + `unchanged_token_rate` "
                f"({params.unchanged_token_rate}) exceed 1"
            )
        self._params = params
        self._fields = [TEXT_FIELD] if self._text_files else list(fields)
        self._tokenizer = build_tokenizer(
            params.tokenization, params.vocab_file_path, params.lower_case, "vocab_file_path"
        )
        ids = special_token_ids(
            self._tokenizer,
            params.vocab_file_path,
            ["start_of_sequence_id", "end_of_segment_id", "padding_id", "mask_id", "vocab_size"],
        )
        self._cls_id = ids["start_of_sequence_id"]
        self._sep_id = ids["end_of_segment_id"]
        self._pad_id = ids["padding_id"]
        self._mask_id = ids["mask_id"]
        self._vocab_size = ids["vocab_size"]

    # Decoding.

    # Not converted by AutoGraph, so a config error raised while tracing is not wrapped.
    @tf.autograph.experimental.do_not_convert
    def _decode(self, record: tf.Tensor | Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        if self._params.tfds_name:
            return self._select_tfds_text(record)
        if self._text_files:
            return {TEXT_FIELD: record}
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in self._fields}
        return tf.io.parse_single_example(record, spec)

    def _select_tfds_text(self, record: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The text features of a TFDS example, checked to be scalar strings."""
        name = self._params.tfds_name
        for field in self._fields:
            if field not in record:
                raise ConfigError(
                    f"`text_field_names` names {field!r}, which TFDS dataset {name!r} lacks "
                    f"(features: {', '.join(sorted(record))})"
                )
            value = record[field]
            if value.dtype != tf.string or value.shape.rank != 0:
                raise ConfigError(
                    f"`text_field_names` names {field!r}, which in TFDS dataset {name!r} is "
                    f"a {value.dtype.name} feature of shape {value.shape}, not a text feature"
                )
        return {field: record[field] for field in self._fields}

    # Tokenizing and packing.

    def _tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        ids = tf.cast(self._tokenizer(text), tf.int32)
        # WordPiece ids come as [batch, (words), (pieces)], SentencePiece as [batch, (pieces)].
        if ids.shape.rank > 2 and not self._params.use_whole_word_masking:
            ids = ids.merge_dims(-2, -1)
        return ids

    def _trim(self, segments: list[tf.RaggedTensor]) -> list[tf.RaggedTensor]:
        budget = self._params.seq_length - len(segments) - 1
        pieces = [s.merge_dims(1, -1) if s.ragged_rank > 1 else s for s in segments]
        trimmed = tf_text.RoundRobinTrimmer(budget).trim(pieces)
        if not self._params.use_whole_word_masking:
            return trimmed
        kept = []
        for words, allowed in zip(segments, trimmed, strict=True):
            # Keep the whole words that fit in the pieces the trimmer allows.
            running = _ragged_row_cumsum(words.row_lengths(axis=2))
            limit = tf.gather(allowed.row_lengths(), running.value_rowids())
            kept.append(
                tf.ragged.boolean_mask(
                    words, running.with_flat_values(running.flat_values <= limit)
                )
            )
        return kept

    def _combine(self, segments: list[tf.RaggedTensor]) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        rows = segments[0].nrows()

        def special(token_id: int) -> tf.RaggedTensor:
            shape = [rows, 1, 1] if segments[0].ragged_rank > 1 else [rows, 1]
            dense = tf.fill(tf.stack(shape), tf.constant(token_id, tf.int32))
            return tf.RaggedTensor.from_tensor(dense, ragged_rank=len(shape) - 1)

        parts, type_parts = [special(self._cls_id)], [tf.zeros([rows, 1], tf.int32)]
        for type_id, segment in enumerate(segments):
            for part in (segment, special(self._sep_id)):
                parts.append(part)
                flat = part.merge_dims(1, -1) if part.ragged_rank > 1 else part
                type_parts.append(tf.ones_like(flat) * type_id)
        combined = tf.concat(parts, axis=1)
        type_ids = tf.concat(
            [
                t if isinstance(t, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(t)
                for t in type_parts
            ],
            axis=1,
        )
        return combined, type_ids

    def _mask(self, combined: tf.RaggedTensor):
        params = self._params
        unselectable = [self._cls_id, self._sep_id, self._pad_id]
        if params.use_whole_word_masking:
            selector = WholeWordItemSelector(
                params.max_predictions_per_seq, params.masking_rate, unselectable
            )
        else:
            selector = tf_text.RandomItemSelector(
                params.max_predictions_per_seq,
                selection_rate=params.masking_rate,
                unselectable_ids=unselectable,
            )
        chooser = tf_text.MaskValuesChooser(
            self._vocab_size,
            self._mask_id,
            mask_token_rate=1.0 - params.random_token_rate - params.unchanged_token_rate,
            random_token_rate=params.random_token_rate,
        )
        return tf_text.mask_language_model(combined, selector, chooser, axis=1)

    # No Python control flow on tensors here: AutoGraph conversion would only slow tracing.
    @tf.autograph.experimental.do_not_convert
    def _bert_preprocess(
        self, batch: Mapping[str, tf.Tensor]
    ) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        params = self._params
        labels = {}
        if params.use_next_sentence_label:
            first, second, next_labels = next_sentence_pairs(
                split_sentences(batch[self._fields[0]])
            )
            texts = [first, second]
            labels["next_sentence_labels"] = next_labels
        else:
            texts = [batch[name] for name in self._fields]
        segments = self._trim([self._tokenize(text) for text in texts])
        combined, type_ids = self._combine(segments)
        masked_ids, positions, masked_lm_ids = self._mask(combined)

        length, predictions = params.seq_length, params.max_predictions_per_seq
        input_word_ids, input_mask = tf_text.pad_model_inputs(masked_ids, length, self._pad_id)
        input_type_ids, _ = tf_text.pad_model_inputs(type_ids, length)
        positions, weights = tf_text.pad_model_inputs(tf.cast(positions, tf.int32), predictions)
        masked_lm_ids, _ = tf_text.pad_model_inputs(tf.cast(masked_lm_ids, tf.int32), predictions)
        features = {
            "input_word_ids": tf.ensure_shape(tf.cast(input_word_ids, tf.int32), [None, length]),
            "input_mask": tf.ensure_shape(tf.cast(input_mask, tf.int32), [None, length]),
            "input_type_ids": tf.ensure_shape(tf.cast(input_type_ids, tf.int32), [None, length]),
            "masked_lm_positions": tf.ensure_shape(positions, [None, predictions]),
        }
        labels["masked_lm_ids"] = tf.ensure_shape(masked_lm_ids, [None, predictions])
        labels["masked_lm_weights"] = tf.ensure_shape(
            tf.cast(weights, tf.float32), [None, predictions]
        )
        return features, labels

    # Loading.

    def load(self, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """The batched dataset of `(features, labels)` for one input pipeline."""
        params = self._params

        def batch_documents(dataset: tf.data.Dataset, context) -> tf.data.Dataset:
            size = params.doc_batch_size
            if context is not None:
                size = context.get_per_replica_batch_size(size)
            return dataset.batch(size)

        if self._text_files:
            dataset_fn = documents_from_text_file
        else:
            dataset_fn = tfrecord_lib.pick_dataset_fn(params.file_type)
        reader = InputReader(
            params,
            dataset_fn=dataset_fn,
            decoder_fn=self._decode,
            transform_and_batch_fn=batch_documents if params.use_next_sentence_label else None,
            postprocess_fn=self._bert_preprocess,
        )
        dataset = reader.read(input_context)
        if not params.use_next_sentence_label:
            return dataset
        # Each batch of documents gave one example per sentence: batch those.
        dataset = dataset.unbatch().batch(
            reader.per_replica_batch_size(input_context), drop_remainder=params.drop_remainder
        )
        return dataset.prefetch(tf.data.AUTOTUNE)
