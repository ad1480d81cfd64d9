"""SQuAD features: examples to the model's windows, and windows to TFRecords.

The second stage of SQuAD fine-tuning (after `squad_reader`, before `squad_postprocess`):

- `convert_examples_to_features` tokenizes question and words with a `FullTokenizer`
  (the `garden_nlp.text` layers, run eagerly), truncates the question to
  `max_query_length` tokens, and slides windows of the context over `max_seq_length` with
  `doc_stride`: each window is one feature `[CLS] question [SEP] context [SEP]`, keeping
  maps from its tokens back to the words. Training answers become token start and end
  positions in the window (refined to the tokenized answer text); a window without the
  answer, or an unanswerable question, gets positions 0 (the `[CLS]` token).
- `write_features` / `generate_tf_record_from_json_file` / `prepare_eval_features`:
  features to TFRecords (`unique_ids`, `input_ids`, `input_mask`, `segment_ids` and, for
  training, `start_positions`, `end_positions`, `is_impossible`), written atomically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import tensorflow as tf

from garden_nlp.data import tfrecord_lib
from garden_nlp.data.squad_reader import SquadExample, read_squad_examples
from garden_nlp.data.tokenization import FullTokenizer

UNIQUE_ID_BASE = 1000000000
"""The `unique_id` of the first feature of a conversion."""


@dataclasses.dataclass
class InputFeatures:
    """One window of one example, as the model sees it.

    Attributes:
        unique_id: The feature's id (its `unique_ids` in the TFRecord).
        example_index: The position of its example in the example list.
        doc_span_index: Which window of the example it is.
        tokens: The token strings, `[CLS]` to the last `[SEP]` (no padding).
        token_to_orig_map: Token position to word index in `doc_tokens`, for context tokens.
        token_is_max_context: Token position to whether this window gives the token the
            most context of all windows holding it.
        input_ids, input_mask, segment_ids: The model inputs, `max_seq_length` each.
        start_position, end_position: The answer's token positions (training), 0 if none.
        is_impossible: The window holds no answer (training).
    """

    unique_id: int
    example_index: int
    doc_span_index: int
    tokens: list[str]
    token_to_orig_map: dict[int, int]
    token_is_max_context: dict[int, bool]
    input_ids: list[int]
    input_mask: list[int]
    segment_ids: list[int]
    start_position: int = 0
    end_position: int = 0
    is_impossible: bool = False


def _improve_answer_span(
    doc_tokens: Sequence[str], start: int, end: int, answer_tokens: Sequence[str]
) -> tuple[int, int]:
    """The narrowest token span in [start, end] that spells the tokenized answer."""
    target = list(answer_tokens)
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if list(doc_tokens[new_start : new_end + 1]) == target:
                return new_start, new_end
    return start, end


def _is_max_context(spans: Sequence[tuple[int, int]], span_index: int, position: int) -> bool:
    """Whether window `span_index` gives token `position` its widest context.

    A token's context in a window is the smaller of its left and right context, plus a
    hundredth of the window length to break ties toward longer windows.
    """
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return best_index == span_index


def _doc_spans(num_tokens: int, max_tokens: int, doc_stride: int) -> list[tuple[int, int]]:
    spans = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return spans


def convert_examples_to_features(
    examples: Sequence[SquadExample],
    tokenizer: FullTokenizer,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    is_training: bool,
) -> Iterator[InputFeatures]:
    """Yields the window features of the examples, in order (see the module docstring).

    Args:
        examples: From `read_squad_examples`.
        tokenizer: The tokenizer of the model's vocabulary.
        max_seq_length: The length of every feature.
        doc_stride: Tokens between the starts of consecutive windows.
        max_query_length: The most question tokens kept.
        is_training: Compute start and end positions.

    Raises:
        ValueError: If `max_seq_length` leaves no room for context after the question.
    """
    if max_query_length < 1 or doc_stride < 1:
        raise ValueError(
            f"max_query_length ({max_query_length}) and doc_stride ({doc_stride}) must be positive"
        )
    if max_seq_length - max_query_length - 3 < 1:
        raise ValueError(
            f"max_seq_length {max_seq_length} leaves no context tokens after a question of "
            f"up to max_query_length {max_query_length} tokens and 3 special tokens"
        )
    cls_id, sep_id = tokenizer.token_id("[CLS]"), tokenizer.token_id("[SEP]")
    pad_id = tokenizer.special_tokens.get("padding_id", 0)
    unique_id = UNIQUE_ID_BASE
    cached_words: tuple[list[str] | None, list[list[str]]] = (None, [])
    chunk = 256
    for chunk_start in range(0, len(examples), chunk):
        batch = examples[chunk_start : chunk_start + chunk]
        questions = tokenizer.tokenize_batch([e.question_text for e in batch])
        answers = (
            tokenizer.tokenize_batch([e.orig_answer_text or "" for e in batch])
            if is_training
            else [[] for _ in batch]
        )
        for offset, example in enumerate(batch):
            if cached_words[0] is not example.doc_tokens:
                pieces = tokenizer.tokenize_batch(example.doc_tokens) if example.doc_tokens else []
                cached_words = (example.doc_tokens, pieces)
            for feature in _example_features(
                example,
                chunk_start + offset,
                questions[offset][:max_query_length],
                cached_words[1],
                answers[offset],
                tokenizer,
                (cls_id, sep_id, pad_id),
                max_seq_length,
                doc_stride,
                is_training,
                unique_id,
            ):
                unique_id += 1
                yield feature


def _example_features(
    example: SquadExample,
    example_index: int,
    query_tokens: list[str],
    word_pieces: list[list[str]],
    answer_tokens: list[str],
    tokenizer: FullTokenizer,
    special_ids: tuple[int, int, int],
    max_seq_length: int,
    doc_stride: int,
    is_training: bool,
    first_unique_id: int,
) -> Iterator[InputFeatures]:
    cls_id, sep_id, pad_id = special_ids
    tok_to_orig, orig_to_tok, doc_pieces = [], [], []
    for word_index, pieces in enumerate(word_pieces):
        orig_to_tok.append(len(doc_pieces))
        for piece in pieces:
            tok_to_orig.append(word_index)
            doc_pieces.append(piece)

    answer_start = answer_end = None
    if is_training and not example.is_impossible:
        answer_start = orig_to_tok[example.start_position]
        if example.end_position < len(example.doc_tokens) - 1:
            answer_end = orig_to_tok[example.end_position + 1] - 1
        else:
            answer_end = len(doc_pieces) - 1
        answer_start, answer_end = _improve_answer_span(
            doc_pieces, answer_start, answer_end, answer_tokens
        )

    max_tokens_for_doc = max_seq_length - len(query_tokens) - 3
    spans = _doc_spans(len(doc_pieces), max_tokens_for_doc, doc_stride)
    query_ids = tokenizer.convert_tokens_to_ids(query_tokens)
    for span_index, (span_start, span_length) in enumerate(spans):
        tokens = ["[CLS]", *query_tokens, "[SEP]"]
        input_ids = [cls_id, *query_ids, sep_id]
        segment_ids = [0] * len(tokens)
        token_to_orig_map, token_is_max_context = {}, {}
        span_pieces = doc_pieces[span_start : span_start + span_length]
        for i, piece in enumerate(span_pieces):
            position = span_start + i
            token_to_orig_map[len(tokens)] = tok_to_orig[position]
            token_is_max_context[len(tokens)] = _is_max_context(spans, span_index, position)
            tokens.append(piece)
        input_ids.extend(tokenizer.convert_tokens_to_ids(span_pieces))
        tokens.append("[SEP]")
        input_ids.append(sep_id)
        segment_ids.extend([1] * (span_length + 1))
        input_mask = [1] * len(input_ids)
        padding = max_seq_length - len(input_ids)
        input_ids.extend([pad_id] * padding)
        input_mask.extend([0] * padding)
        segment_ids.extend([0] * padding)

        start_position = end_position = 0
        contains_answer = False
        if answer_start is not None:
            span_end = span_start + span_length - 1
            contains_answer = span_start <= answer_start and answer_end <= span_end
            if contains_answer:
                doc_offset = len(query_tokens) + 2
                start_position = answer_start - span_start + doc_offset
                end_position = answer_end - span_start + doc_offset
        yield InputFeatures(
            unique_id=first_unique_id + span_index,
            example_index=example_index,
            doc_span_index=span_index,
            tokens=tokens,
            token_to_orig_map=token_to_orig_map,
            token_is_max_context=token_is_max_context,
            input_ids=input_ids,
            input_mask=input_mask,
            segment_ids=segment_ids,
            start_position=start_position,
            end_position=end_position,
            is_impossible=not contains_answer,
        )


def feature_to_example(feature: InputFeatures, is_training: bool) -> tf.train.Example:
    """The tf.Example of one feature (the layout `QuestionAnsweringDataLoader` reads)."""
    values: dict[str, Any] = {
        "unique_ids": feature.unique_id,
        "input_ids": feature.input_ids,
        "input_mask": feature.input_mask,
        "segment_ids": feature.segment_ids,
    }
    if is_training:
        values["start_positions"] = feature.start_position
        values["end_positions"] = feature.end_position
        values["is_impossible"] = int(feature.is_impossible)
    return tfrecord_lib.make_example(values)


def write_features(
    features: Iterable[InputFeatures],
    output_path: str,
    is_training: bool,
    keep: bool = False,
) -> tuple[int, list[InputFeatures]]:
    """Writes features to a TFRecord file atomically.

    Args:
        features: The features (for example the `convert_examples_to_features` stream).
        output_path: The TFRecord file.
        is_training: Write start and end positions (training) or not (evaluation).
        keep: Also return the features written (evaluation needs them to postprocess).

    Returns:
        `(number written, the features if keep else [])`.
    """
    kept = []
    with tfrecord_lib.AtomicTFRecordWriter(output_path) as writer:
        for feature in features:
            writer.write(feature_to_example(feature, is_training))
            if keep:
                kept.append(feature)
    return writer.num_records, kept


def generate_tf_record_from_json_file(
    input_file_path: str,
    vocab_file_path: str,
    output_path: str,
    max_seq_length: int = 384,
    do_lower_case: bool = True,
    max_query_length: int = 64,
    doc_stride: int = 128,
    version_2_with_negative: bool = False,
    tokenization: str = "WordPiece",
) -> dict[str, Any]:
    """Converts a SQuAD training file into a TFRecord of training features.

    Args:
        input_file_path: The SQuAD JSON file.
        vocab_file_path: The WordPiece vocabulary (or SentencePiece model).
        output_path: The TFRecord file to write.
        max_seq_length: The feature length.
        do_lower_case: Lower-case the text.
        max_query_length: The most question tokens kept.
        doc_stride: Tokens between the starts of consecutive windows.
        version_2_with_negative: SQuAD 2.0 data.
        tokenization: `WordPiece` or `SentencePiece`.

    Returns:
        Model Garden's input meta data: `task_type` (`bert_squad`), `train_data_size`
        (features written), `max_seq_length`, `max_query_length`, `doc_stride`,
        `version_2_with_negative`.
    """
    examples = read_squad_examples(input_file_path, True, version_2_with_negative)
    tokenizer = FullTokenizer(vocab_file_path, do_lower_case, tokenization)
    features = convert_examples_to_features(
        examples, tokenizer, max_seq_length, doc_stride, max_query_length, is_training=True
    )
    count, _ = write_features(features, output_path, is_training=True)
    return {
        "task_type": "bert_squad",
        "train_data_size": count,
        "max_seq_length": max_seq_length,
        "max_query_length": max_query_length,
        "doc_stride": doc_stride,
        "version_2_with_negative": version_2_with_negative,
    }


def prepare_eval_features(
    input_file: str,
    tokenizer: FullTokenizer,
    output_path: str,
    max_seq_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
    version_2_with_negative: bool = False,
) -> tuple[list[SquadExample], list[InputFeatures]]:
    """Converts a SQuAD evaluation file into a TFRecord of features with `unique_ids`.

    Returns:
        The examples and features, which `postprocess_output` needs with the logits.
    """
    examples = read_squad_examples(input_file, False, version_2_with_negative)
    features = convert_examples_to_features(
        examples, tokenizer, max_seq_length, doc_stride, max_query_length, is_training=False
    )
    _, kept = write_features(features, output_path, is_training=False, keep=True)
    return examples, kept
