"""Token-tagging metrics (NER, POS), in NumPy and plain Python.

- `token_accuracy`: the share of scored tokens tagged right (label -1 is not scored).
- `get_entities`: the labelled spans of a tag sequence in the IOB1, IOB2 (BIO) or IOBES
  (BILOU written with E and S) schemes, with conlleval's rules, which `seqeval` follows
  by default: a span starts at `B-`/`S-`, or at `I-`/`E-` after `O`, after a span's end or
  after another type; it ends before `O`, `B-`, `S-` or another type, and after `E-`/`S-`.
- `span_precision_recall_f1`: micro-averaged span precision, recall and F1 (a predicted
  span counts when its type, start and end all match a gold span), and the same per type.
- `tag_sequences_from_ids`: turns label and predicted id arrays of a token classifier into
  tag-name sequences, keeping only scored positions (label != -1), for the span metrics.

Tags are `O` or `PREFIX-TYPE` (`B-PER`, `I-LOC`, `E-ORG`, `S-MISC`); a bare `B` or `I` has
the empty type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

IGNORED_LABEL_ID = -1
"""The label id of positions that are not scored (special tokens, padding, later pieces)."""


def token_accuracy(labels: Any, predictions: Any, ignore_label: Any = IGNORED_LABEL_ID) -> float:
    """The share of tokens whose predicted tag equals the label, over scored tokens.

    Args:
        labels: Label ids or tags, any shape (e.g. `[batch, seq_length]`), or a list of
            per-sentence lists.
        predictions: Predicted ids or tags, the same shape as `labels`.
        ignore_label: Positions whose label equals this are not scored.

    Raises:
        ValueError: If the shapes differ or no token is scored.
    """
    labels, predictions = _flatten(labels, "labels"), _flatten(predictions, "predictions")
    if labels.shape != predictions.shape:
        raise ValueError(
            f"`labels` has {labels.size} tokens but `predictions` has {predictions.size}"
        )
    scored = labels != ignore_label
    if not np.any(scored):
        raise ValueError("no token is scored: every label equals `ignore_label`")
    return float(np.mean(labels[scored] == predictions[scored]))


def _flatten(values: Any, name: str) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.reshape(-1)
    if values and isinstance(values[0], (list, tuple, np.ndarray)):
        return np.asarray([v for sentence in values for v in sentence])
    return np.asarray(values).reshape(-1)


def _split_tag(tag: str) -> tuple[str, str]:
    if tag in ("O", ""):
        return "O", ""
    prefix, _, entity_type = tag.partition("-")
    if prefix not in ("B", "I", "E", "S"):
        raise ValueError(
            f"tag {tag!r} is neither `O` nor `B-`, `I-`, `E-` or `S-` followed by a type"
        )
    return prefix, entity_type


def _ends(prev_prefix: str, prefix: str, prev_type: str, entity_type: str) -> bool:
    """Whether a span ends at the previous token, given the previous and current tags."""
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix in ("B", "I") and prefix in ("B", "S", "O"):
        return True
    return prev_prefix != "O" and prev_type != entity_type


def _starts(prev_prefix: str, prefix: str, prev_type: str, entity_type: str) -> bool:
    """Whether a span starts at the current token, given the previous and current tags."""
    if prefix in ("B", "S"):
        return True
    if prev_prefix in ("E", "S", "O") and prefix in ("E", "I"):
        return True
    return prefix != "O" and prev_type != entity_type


def get_entities(tags: Sequence[str] | Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """The spans of a tag sequence as `(type, start, end)`, `end` inclusive.

    Args:
        tags: One sequence of tags, or a list of sentences (their spans never cross a
            sentence boundary; positions count through all sentences in order).

    Raises:
        ValueError: For a tag that is not `O` or `B-`/`I-`/`E-`/`S-` plus a type.
    """
    if tags and not isinstance(tags[0], str):
        flat: list[str] = []
        for sentence in tags:
            flat.extend(list(sentence) + ["O"])
        entities = get_entities(flat)
        # Positions through the joined sentences, without the separators.
        offsets = np.cumsum([0] + [len(s) + 1 for s in tags])
        shifted = []
        for entity_type, start, end in entities:
            sentence_index = int(np.searchsorted(offsets, start, side="right") - 1)
            shift = sentence_index
            shifted.append((entity_type, start - shift, end - shift))
        return shifted
    entities = []
    prev_prefix, prev_type, start = "O", "", 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, entity_type = _split_tag(tag)
        if _ends(prev_prefix, prefix, prev_type, entity_type):
            entities.append((prev_type, start, i - 1))
        if _starts(prev_prefix, prefix, prev_type, entity_type):
            start = i
        prev_prefix, prev_type = prefix, entity_type
    return entities


def _prf(num_correct: int, num_predicted: int, num_true: int) -> dict[str, float]:
    precision = num_correct / num_predicted if num_predicted else 0.0
    recall = num_correct / num_true if num_true else 0.0
    denominator = precision + recall
    f1 = 2 * precision * recall / denominator if denominator else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def span_precision_recall_f1(
    labels: Sequence[Sequence[str]] | Sequence[str],
    predictions: Sequence[Sequence[str]] | Sequence[str],
) -> dict[str, Any]:
    """Span-level (seqeval-style) precision, recall and F1 of predicted tag sequences.

    Args:
        labels: The gold tags: one sequence, or a list of sentences.
        predictions: The predicted tags, shaped like `labels`.

    Returns:
        `{"precision", "recall", "f1"}` micro-averaged over all spans, and `per_type`:
        a dict of entity type to its own `{"precision", "recall", "f1", "support"}`
        (support: the number of gold spans of the type). Metrics with a zero denominator
        are 0.

    Raises:
        ValueError: If the sequences differ in length or hold an invalid tag.
    """
    if len(labels) != len(predictions):
        raise ValueError(
            f"`labels` has {len(labels)} entries but `predictions` has {len(predictions)}"
        )
    if labels and not isinstance(labels[0], str):
        for i, (gold, predicted) in enumerate(zip(labels, predictions, strict=True)):
            if len(gold) != len(predicted):
                raise ValueError(
                    f"sentence {i} has {len(gold)} gold tags but {len(predicted)} predicted"
                )
    true_entities = set(get_entities(labels))
    predicted_entities = set(get_entities(predictions))
    correct = true_entities & predicted_entities
    result: dict[str, Any] = _prf(len(correct), len(predicted_entities), len(true_entities))
    per_type = {}
    for entity_type in sorted({e[0] for e in true_entities | predicted_entities}):
        gold = {e for e in true_entities if e[0] == entity_type}
        predicted = {e for e in predicted_entities if e[0] == entity_type}
        scores = _prf(len(gold & predicted), len(predicted), len(gold))
        per_type[entity_type] = {**scores, "support": len(gold)}
    result["per_type"] = per_type
    return result


def tag_sequences_from_ids(
    label_ids: Any,
    predicted_ids: Any,
    label_list: Sequence[str],
    ignore_label: int = IGNORED_LABEL_ID,
) -> tuple[list[list[str]], list[list[str]]]:
    """Tag-name sequences of the scored positions of each example.

    Args:
        label_ids: Label ids `[batch, seq_length]`, `ignore_label` where not scored.
        predicted_ids: Predicted ids `[batch, seq_length]` (e.g. the argmax of logits).
        label_list: Tag names by id.
        ignore_label: The label id of positions that are not scored.

    Returns:
        `(gold_tags, predicted_tags)`: per example, the tags of its scored positions.

    Raises:
        ValueError: If the shapes differ or an id has no tag name.
    """
    label_ids = np.asarray(label_ids)
    predicted_ids = np.asarray(predicted_ids)
    if label_ids.shape != predicted_ids.shape or label_ids.ndim != 2:
        raise ValueError(
            f"`label_ids` {label_ids.shape} and `predicted_ids` {predicted_ids.shape} must "
            "have the same [batch, seq_length] shape"
        )
    gold_tags, predicted_tags = [], []
    for gold_row, predicted_row in zip(label_ids, predicted_ids, strict=True):
        scored = gold_row != ignore_label
        for ids in (gold_row[scored], predicted_row[scored]):
            bad = ids[(ids < 0) | (ids >= len(label_list))]
            if bad.size:
                raise ValueError(f"id {int(bad[0])} has no name in the {len(label_list)} tags")
        gold_tags.append([label_list[i] for i in gold_row[scored]])
        predicted_tags.append([label_list[i] for i in predicted_row[scored]])
    return gold_tags, predicted_tags
