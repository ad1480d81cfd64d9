"""SQuAD 1.1 / 2.0 reading: the questions of a SQuAD JSON file as `SquadExample`s.

The first stage of SQuAD fine-tuning (`squad_lib` gathers the three under Model Garden's
names): `read_squad_examples` returns each question with its context split on whitespace
into words (`doc_tokens`) and, for training, the answer's first and last word. A malformed
file is a `SquadFormatError` naming the file and the entry (`data[3].paragraphs[0].qas[2]`);
a training answer whose text cannot be found at its character offset is skipped with a
warning. `squad_features` turns the examples into model windows; `squad_postprocess` turns
the model's logits back into answer text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import tensorflow as tf
from absl import logging


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
