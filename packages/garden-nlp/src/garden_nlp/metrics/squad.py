"""SQuAD answer metrics: exact match and token F1 with the official normalization.

`normalize_answer` lower-cases, removes ASCII punctuation, the articles `a`, `an` and `the`,
and collapses whitespace, as the official SQuAD evaluation scripts do. `exact_match` and
`f1` score one predicted answer against one or more gold answers (the best gold answer
counts). `squad_evaluate` scores a whole prediction file the way Model Garden's
`squad_evaluate_v1_1.evaluate` does: the mean over all questions, as fractions in [0, 1],
under the keys `exact_match` and `final_f1`; a question without a prediction scores 0.
Questions without gold answers (SQuAD 2.0's unanswerable ones) score 1 exactly when the
prediction is empty after normalization, as the official SQuAD 2.0 script scores them.
"""

from __future__ import annotations

import collections
import json
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-cases and removes punctuation, articles and extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(ground_truths: str | Sequence[str]) -> list[str]:
    golds = [ground_truths] if isinstance(ground_truths, str) else list(ground_truths)
    if not golds:
        raise ValueError("no gold answers given; pass at least one answer text")
    return golds


def _f1_one(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, ground_truths: str | Sequence[str]) -> float:
    """1.0 when the normalized prediction equals a normalized gold answer, else 0.0.

    Args:
        prediction: The predicted answer text.
        ground_truths: One gold answer or a list of them.
    """
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(g) for g in _golds(ground_truths)))


def f1(prediction: str, ground_truths: str | Sequence[str]) -> float:
    """Token-overlap F1 of the prediction against its best-matching gold answer.

    Args:
        prediction: The predicted answer text.
        ground_truths: One gold answer or a list of them.
    """
    return max(_f1_one(prediction, g) for g in _golds(ground_truths))


def _load(value: Any, what: str) -> Any:
    if isinstance(value, str):
        try:
            with open(value, encoding="utf-8") as f:
                return json.load(f)
        except OSError as error:
            raise ValueError(f"cannot read the {what} file {value!r}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"the {what} file {value!r} is not valid JSON: {error}") from None
    return value


def _articles(dataset: Any) -> list:
    if isinstance(dataset, Mapping):
        if "data" not in dataset:
            raise ValueError("the SQuAD dataset has no top-level `data` list")
        dataset = dataset["data"]
    if not isinstance(dataset, list):
        raise ValueError(
            f"the SQuAD dataset must be a dict with `data` or a list of articles, got "
            f"{type(dataset).__name__}"
        )
    return dataset


def squad_evaluate(
    dataset: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
    predictions: str | Mapping[str, str],
) -> dict[str, float]:
    """Scores predicted answers against a SQuAD dataset.

    Args:
        dataset: A SQuAD JSON file path, its parsed dict (with `data`), or the list of
            articles under `data`.
        predictions: Question ids to predicted answer texts, or a JSON file holding them.

    Returns:
        `{"exact_match": ..., "final_f1": ...}`, each the mean over all questions of the
        dataset, in [0, 1].

    Raises:
        ValueError: If a file cannot be read or the dataset lacks the SQuAD layout,
            naming the entry at fault.
    """
    articles = _articles(_load(dataset, "SQuAD dataset"))
    predictions = _load(predictions, "predictions")
    if not isinstance(predictions, Mapping):
        raise ValueError("predictions must map question ids to answer texts")
    total = 0
    exact_total = 0.0
    f1_total = 0.0
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            for q, qa in enumerate(paragraph.get("qas", [])):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                if "id" not in qa:
                    raise ValueError(f"SQuAD entry {where} has no `id`")
                total += 1
                if qa["id"] not in predictions:
                    logging.error("Unanswered question %s will receive score 0.", qa["id"])
                    continue
                prediction = predictions[qa["id"]]
                golds = [answer["text"] for answer in qa.get("answers", [])]
                if golds:
                    exact_total += exact_match(prediction, golds)
                    f1_total += f1(prediction, golds)
                else:
                    score = float(normalize_answer(prediction) == "")
                    exact_total += score
                    f1_total += score
    if total == 0:
        raise ValueError("the SQuAD dataset holds no questions")
    return {"exact_match": exact_total / total, "final_f1": f1_total / total}
