"""SQuAD 1.1 / 2.0 data: reading, conversion to window features, and answer postprocessing.

The steps, as Model Garden's (and original BERT's) `squad_lib`:

1. `read_squad_examples`: the questions of a SQuAD JSON file, each with its context split
   on whitespace into words (`doc_tokens`) and, for training, the answer's first and last
   word. A malformed file is a `SquadFormatError` naming the file and the entry
   (`data[3].paragraphs[0].qas[2]`); a training answer whose text cannot be found at its
   character offset is skipped with a warning.
2. `convert_examples_to_features`: tokenizes question and words with a `FullTokenizer`
   (the `garden_nlp.text` layers, run eagerly), truncates the question to
   `max_query_length` tokens, and slides windows of the context over `max_seq_length`
   with `doc_stride`: each window is one feature `[CLS] question [SEP] context [SEP]`,
   keeping maps from its tokens back to the words. Training answers become token start and
   end positions in the window (refined to the tokenized answer text); a window without
   the answer, or an unanswerable question, gets positions 0 (the `[CLS]` token).
3. `write_features` / `generate_tf_record_from_json_file` / `prepare_eval_features`:
   features to TFRecords (`unique_ids`, `input_ids`, `input_mask`, `segment_ids` and, for
   training, `start_positions`, `end_positions`, `is_impossible`), written atomically.
4. `postprocess_output`: a model's start and end logits per window back to answer text:
   the `n_best_size` best starts and ends of every window, kept when the span lies in the
   context, is the window with the most context for its start, and is at most
   `max_answer_length` tokens; the best span's tokens are projected onto the original
   text (`get_final_text`). With `version_2_with_negative`, the empty answer wins when the
   null score beats the best span by more than `null_score_diff_threshold`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import posixpath
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from garden_nlp.data import tfrecord_lib
from garden_nlp.data.tokenization import FullTokenizer

UNIQUE_ID_BASE = 1000000000
"""The `unique_id` of the first feature of a conversion."""


class SquadFormatError(ValueError):
    """A SQuAD JSON file does not have the SQuAD layout; the message names the entry."""


@dataclasses.dataclass
class SquadExample:
    """One question with its context.

    Attributes:
        qas_id: The question's id.
        question_text: The question.
        doc_tokens: The context split on whitespace.
        orig_answer_text: The training answer text ("" for none).
        start_position: The answer's first word in `doc_tokens` (training), -1 for none.
        end_position: The answer's last word in `doc_tokens` (training), -1 for none.
        is_impossible: The question has no answer (SQuAD 2.0).
        answers: The gold answer texts (all of them; empty when unanswerable or unknown).
    """

    qas_id: str
    question_text: str
    doc_tokens: list[str]
    orig_answer_text: str | None = None
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False
    answers: list[str] = dataclasses.field(default_factory=list)


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


@dataclasses.dataclass
class RawResult:
    """A model's logits for one feature.

    Attributes:
        unique_id: The feature's `unique_id`.
        start_logits: One start logit per token position.
        end_logits: One end logit per token position.
    """

    unique_id: int
    start_logits: Sequence[float]
    end_logits: Sequence[float]


# Reading.


def _is_squad_whitespace(char: str) -> bool:
    return char in " \t\r\n" or ord(char) == 0x202F


def split_on_whitespace(text: str) -> tuple[list[str], list[int]]:
    """Splits text into words and maps every character to the index of its word.

    Returns:
        `(words, char_to_word_offset)`: whitespace belongs to the word before it (-1
        before the first word).
    """
    words: list[str] = []
    char_to_word: list[int] = []
    after_space = True
    for char in text:
        if _is_squad_whitespace(char):
            after_space = True
        else:
            if after_space:
                words.append(char)
            else:
                words[-1] += char
            after_space = False
        char_to_word.append(len(words) - 1)
    return words, char_to_word


def _require(entry: Mapping[str, Any], key: str, kind: type, where: str, path: str) -> Any:
    if not isinstance(entry, Mapping) or key not in entry:
        raise SquadFormatError(f"{path}: SQuAD entry {where} has no `{key}`")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SquadFormatError(
            f"{path}: SQuAD entry {where}.{key} must be a {kind.__name__}, "
            f"got {type(value).__name__}"
        )
    return value


def load_squad_json(input_file: str) -> list[dict[str, Any]]:
    """The articles (`data`) of a SQuAD JSON file.

    Raises:
        SquadFormatError: If the file cannot be read, is not JSON or has no `data` list.
    """
    try:
        with tf.io.gfile.GFile(input_file, "r") as f:
            content = json.load(f)
    except (tf.errors.OpError, OSError) as error:
        raise SquadFormatError(f"cannot read the SQuAD file {input_file!r}: {error}") from None
    except json.JSONDecodeError as error:
        raise SquadFormatError(f"{input_file}: not valid JSON ({error})") from None
    return _require(content, "data", list, "(top level)", input_file)


def read_squad_examples(
    input_file: str, is_training: bool, version_2_with_negative: bool = False
) -> list[SquadExample]:
    """Reads the questions of a SQuAD 1.1 or 2.0 JSON file.

    Args:
        input_file: The JSON file (any path `tf.io.gfile` reads).
        is_training: Read the answer of each question into word positions; every
            answerable question must have exactly one answer.
        version_2_with_negative: SQuAD 2.0: `is_impossible` questions have no answer.

    Returns:
        The examples, in file order; examples of one paragraph share its `doc_tokens`.

    Raises:
        SquadFormatError: For a malformed file, naming the file and the entry.
    """
    examples = []
    for a, article in enumerate(load_squad_json(input_file)):
        paragraphs = _require(article, "paragraphs", list, f"data[{a}]", input_file)
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _require(paragraph, "context", str, where, input_file)
            qas = _require(paragraph, "qas", list, where, input_file)
            doc_tokens, char_to_word = split_on_whitespace(context)
            for q, qa in enumerate(qas):
                example = _read_question(
                    qa,
                    f"{where}.qas[{q}]",
                    input_file,
                    context,
                    doc_tokens,
                    char_to_word,
                    is_training,
                    version_2_with_negative,
                )
                if example is not None:
                    examples.append(example)
    return examples


def _read_question(
    qa: Mapping[str, Any],
    where: str,
    path: str,
    context: str,
    doc_tokens: list[str],
    char_to_word: list[int],
    is_training: bool,
    version_2_with_negative: bool,
) -> SquadExample | None:
    qas_id = _require(qa, "id", str, where, path)
    question = _require(qa, "question", str, where, path)
    where = f"{where} (id {qas_id!r})"
    answers = qa.get("answers", [])
    if not isinstance(answers, list):
        raise SquadFormatError(f"{path}: SQuAD entry {where}.answers must be a list")
    for i, answer in enumerate(answers):
        _require(answer, "text", str, f"{where}.answers[{i}]", path)
    is_impossible = bool(qa.get("is_impossible", False)) if version_2_with_negative else False
    example = SquadExample(
        qas_id=qas_id,
        question_text=question,
        doc_tokens=doc_tokens,
        is_impossible=is_impossible,
        answers=[answer["text"] for answer in answers],
    )
    if not is_training:
        return example
    if is_impossible:
        example.start_position = example.end_position = -1
        example.orig_answer_text = ""
        return example
    if len(answers) != 1:
        raise SquadFormatError(
            f"{path}: SQuAD entry {where} has {len(answers)} answers; for training every "
            "answerable question needs exactly one"
        )
    text = answers[0]["text"]
    start = _require(answers[0], "answer_start", int, f"{where}.answers[0]", path)
    if not text or start < 0 or start + len(text) > len(context):
        raise SquadFormatError(
            f"{path}: SQuAD entry {where}: answer_start {start} with a {len(text)}-character "
            f"answer lies outside its {len(context)}-character context"
        )
    first, last = char_to_word[start], char_to_word[start + len(text) - 1]
    actual = " ".join(doc_tokens[max(first, 0) : last + 1])
    if actual.find(" ".join(text.split())) == -1:
        logging.warning("Skipping %s: answer %r not found in %r", where, text, actual)
        return None
    example.orig_answer_text = text
    example.start_position, example.end_position = first, last
    return example


# Conversion to features.


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


# Postprocessing.

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def basic_tokenize(text: str, lower_case: bool) -> list[str]:
    """BERT's basic tokenization: cleans, splits on whitespace, punctuation and CJK.

    With `lower_case`, words are lower-cased and stripped of accents (NFD, marks removed),
    as the WordPiece tokenizer normalizes them before splitting into pieces.
    """
    cleaned = []
    for char in text:
        code = ord(char)
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            cleaned.append(" ")
        elif code == 0 or code == 0xFFFD or unicodedata.category(char).startswith("C"):
            continue
        elif any(low <= code <= high for low, high in _CJK_RANGES):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    tokens = []
    for word in "".join(cleaned).split():
        if lower_case:
            word = "".join(
                c
                for c in unicodedata.normalize("NFD", word.lower())
                if unicodedata.category(c) != "Mn"
            )
        current = ""
        for char in word:
            if _is_punctuation(char):
                if current:
                    tokens.append(current)
                tokens.append(char)
                current = ""
            else:
                current += char
        if current:
            tokens.append(current)
    return tokens


def _without_spaces(text: str) -> tuple[str, dict[int, int]]:
    chars, positions = [], {}
    for i, char in enumerate(text):
        if char == " ":
            continue
        positions[len(chars)] = i
        chars.append(char)
    return "".join(chars), positions


def get_final_text(pred_text: str, orig_text: str, do_lower_case: bool) -> str:
    """Projects a detokenized prediction onto the original text of its words.

    The words' basic tokenization is aligned character by character (spaces removed) with
    the original words, and the prediction's span in it is mapped back; when the
    alignment fails the original words are returned whole. E.g. prediction `steve smith`
    in original `Steve Smith's` gives `Steve Smith`.

    Args:
        pred_text: The prediction from the model's tokens (normalized by the tokenizer).
        orig_text: The original words the predicted tokens came from, space-joined.
        do_lower_case: Whether the tokenizer lower-cased.
    """
    tok_text = " ".join(basic_tokenize(orig_text, do_lower_case))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_chars, orig_map = _without_spaces(orig_text)
    tok_chars, tok_map = _without_spaces(tok_text)
    if len(orig_chars) != len(tok_chars):
        return orig_text
    tok_to_stripped = {position: i for i, position in tok_map.items()}
    if start not in tok_to_stripped or end not in tok_to_stripped:
        return orig_text
    orig_start = orig_map.get(tok_to_stripped[start])
    orig_end = orig_map.get(tok_to_stripped[end])
    if orig_start is None or orig_end is None:
        return orig_text
    return orig_text[orig_start : orig_end + 1]


def _best_indexes(logits: Sequence[float], n_best_size: int) -> list[int]:
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:n_best_size]]


def _softmax(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


_Prelim = collections.namedtuple(
    "_Prelim", ["feature_index", "start_index", "end_index", "start_logit", "end_logit"]
)
_Nbest = collections.namedtuple("_Nbest", ["text", "start_logit", "end_logit"])


def postprocess_output(
    all_examples: Sequence[SquadExample],
    all_features: Sequence[InputFeatures],
    all_results: Iterable[RawResult],
    n_best_size: int = 20,
    max_answer_length: int = 30,
    do_lower_case: bool = True,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
    tokenizer: FullTokenizer | None = None,
) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Turns start and end logits into answer texts (see the module docstring).

    Args:
        all_examples: The examples, as `read_squad_examples` returned them.
        all_features: Their features, with `tokens` and maps (from the conversion).
        all_results: The model's logits per feature; features without a result are
            skipped (a question with none at all gets the answer `empty`).
        n_best_size: How many best starts and ends of each window are combined, and how
            many answers are kept per question.
        max_answer_length: The longest answer, in tokens.
        do_lower_case: Whether the tokenizer lower-cased (for `get_final_text`).
        version_2_with_negative: Allow the empty answer.
        null_score_diff_threshold: Predict the empty answer when the null score exceeds
            the best span's score by more than this.
        tokenizer: Joins the predicted tokens back into text; None joins WordPiece
            tokens (`##` continuations).

    Returns:
        `(predictions, nbest, scores_diff)`: question id to answer text; question id to its
        n-best list (dicts of `text`, `probability`, `start_logit`, `end_logit`); and, with
        `version_2_with_negative`, question id to the null score minus the best span's.
    """
    features_by_example = collections.defaultdict(list)
    for feature in all_features:
        features_by_example[feature.example_index].append(feature)
    results = {int(result.unique_id): result for result in all_results}

    predictions: dict[str, str] = collections.OrderedDict()
    nbest_json: dict[str, list[dict[str, Any]]] = collections.OrderedDict()
    scores_diff: dict[str, float] = collections.OrderedDict()
    for example_index, example in enumerate(all_examples):
        features = features_by_example[example_index]
        prelims = []
        score_null = math.inf
        null_feature, null_start, null_end = 0, 0.0, 0.0
        for feature_index, feature in enumerate(features):
            result = results.get(feature.unique_id)
            if result is None:
                continue
            start_logits = [float(x) for x in result.start_logits]
            end_logits = [float(x) for x in result.end_logits]
            if version_2_with_negative:
                feature_null = start_logits[0] + end_logits[0]
                if feature_null < score_null:
                    score_null = feature_null
                    null_feature, null_start, null_end = (
                        feature_index,
                        start_logits[0],
                        end_logits[0],
                    )
            for start in _best_indexes(start_logits, n_best_size):
                for end in _best_indexes(end_logits, n_best_size):
                    if start >= len(feature.tokens) or end >= len(feature.tokens):
                        continue
                    if start not in feature.token_to_orig_map:
                        continue
                    if end not in feature.token_to_orig_map:
                        continue
                    if not feature.token_is_max_context.get(start, False):
                        continue
                    if end < start or end - start + 1 > max_answer_length:
                        continue
                    prelims.append(
                        _Prelim(feature_index, start, end, start_logits[start], end_logits[end])
                    )
        if version_2_with_negative and score_null < math.inf:
            prelims.append(_Prelim(null_feature, 0, 0, null_start, null_end))
        prelims.sort(key=lambda p: p.start_logit + p.end_logit, reverse=True)

        seen, nbest = set(), []
        for prelim in prelims:
            if len(nbest) >= n_best_size:
                break
            if prelim.start_index > 0:
                feature = features[prelim.feature_index]
                pieces = feature.tokens[prelim.start_index : prelim.end_index + 1]
                if tokenizer is not None:
                    pred_text = tokenizer.detokenize(pieces)
                else:
                    pred_text = " ".join(
                        " ".join(pieces).replace(" ##", "").replace("##", "").split()
                    )
                first = feature.token_to_orig_map[prelim.start_index]
                last = feature.token_to_orig_map[prelim.end_index]
                orig_text = " ".join(example.doc_tokens[first : last + 1])
                text = get_final_text(pred_text, orig_text, do_lower_case)
                if text in seen:
                    continue
            else:
                text = ""
            seen.add(text)
            nbest.append(_Nbest(text, prelim.start_logit, prelim.end_logit))
        if version_2_with_negative and "" not in seen and score_null < math.inf:
            nbest.append(_Nbest("", null_start, null_end))
        if not nbest:
            nbest.append(_Nbest("empty", 0.0, 0.0))

        probabilities = _softmax([n.start_logit + n.end_logit for n in nbest])
        nbest_json[example.qas_id] = [
            {
                "text": n.text,
                "probability": p,
                "start_logit": n.start_logit,
                "end_logit": n.end_logit,
            }
            for n, p in zip(nbest, probabilities, strict=True)
        ]
        if not version_2_with_negative:
            predictions[example.qas_id] = nbest[0].text
            continue
        best_non_null = next((n for n in nbest if n.text), None)
        if best_non_null is None:
            scores_diff[example.qas_id] = score_null
            predictions[example.qas_id] = ""
            continue
        diff = score_null - best_non_null.start_logit - best_non_null.end_logit
        scores_diff[example.qas_id] = diff
        predictions[example.qas_id] = "" if diff > null_score_diff_threshold else best_non_null.text
    return predictions, nbest_json, scores_diff


def write_json(value: Any, path: str) -> None:
    """Writes `value` as indented JSON to `path` atomically (temporary file, then rename)."""
    directory, name = posixpath.split(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    temporary = posixpath.join(directory, f".{name}.tmp")
    try:
        with tf.io.gfile.GFile(temporary, "w") as f:
            f.write(json.dumps(value, indent=4) + "\n")
        tf.io.gfile.rename(temporary, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)


def write_predictions(
    all_examples: Sequence[SquadExample],
    all_features: Sequence[InputFeatures],
    all_results: Iterable[RawResult],
    n_best_size: int,
    max_answer_length: int,
    do_lower_case: bool,
    output_prediction_file: str,
    output_nbest_file: str,
    output_null_log_odds_file: str | None = None,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
    tokenizer: FullTokenizer | None = None,
) -> dict[str, str]:
    """Runs `postprocess_output` and writes its results as JSON files (atomically).

    Returns:
        The predictions (question id to answer text).
    """
    predictions, nbest, scores_diff = postprocess_output(
        all_examples,
        all_features,
        all_results,
        n_best_size=n_best_size,
        max_answer_length=max_answer_length,
        do_lower_case=do_lower_case,
        version_2_with_negative=version_2_with_negative,
        null_score_diff_threshold=null_score_diff_threshold,
        tokenizer=tokenizer,
    )
    write_json(predictions, output_prediction_file)
    write_json(nbest, output_nbest_file)
    if version_2_with_negative and output_null_log_odds_file:
        write_json(scores_diff, output_null_log_odds_file)
    return predictions
