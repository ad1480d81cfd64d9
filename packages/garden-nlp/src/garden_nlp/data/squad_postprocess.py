"""SQuAD postprocessing: a model's start and end logits back to answer text.

The last stage of SQuAD fine-tuning (after `squad_reader` and `squad_features`):
`postprocess_output` takes the `n_best_size` best starts and ends of every window, keeps a
span when it lies in the context, is in the window with the most context for its start, and
is at most `max_answer_length` tokens, and projects the best span's tokens onto the
original text (`get_final_text`). With `version_2_with_negative`, the empty answer wins
when the null score beats the best span by more than `null_score_diff_threshold`.
`write_predictions` writes the predictions (and n-best lists) as JSON files.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from garden_nlp.data.squad_features import InputFeatures
from garden_nlp.data.squad_reader import SquadExample
from garden_nlp.data.tokenization import FullTokenizer
from garden_orbit.utils import atomic_write


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
    atomic_write.write_text(path, json.dumps(value, indent=4) + "\n")


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
