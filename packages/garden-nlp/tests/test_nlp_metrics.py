"""NLP metrics against values worked out by hand (and SciPy / scikit-learn / seqeval's)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from garden_nlp import metrics


def test_matthews_corrcoef_binary_and_multiclass():
    # TP=2, TN=2, FP=1, FN=1: (4 - 1) / sqrt(3 * 3 * 3 * 3) = 1/3.
    assert metrics.matthews_corrcoef([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1]) == pytest.approx(1 / 3)
    # Confusion [[2,0,0],[1,0,1],[0,1,1]]: (3*6 - 12) / sqrt((36 - 12) * (36 - 14)).
    value = metrics.matthews_corrcoef([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 2])
    assert value == pytest.approx(6 / math.sqrt(24 * 22))
    assert metrics.matthews_corrcoef([0, 1, 1, 0], [0, 1, 1, 0]) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef([0, 1, 1, 0], [1, 0, 0, 1]) == pytest.approx(-1.0)


def test_matthews_corrcoef_is_zero_when_undefined():
    assert metrics.matthews_corrcoef([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0
    assert metrics.matthews_corrcoef([1, 1, 1], [0, 1, 0]) == 0.0


def test_correlations_and_ties():
    # Pearson of [1,2,3] and [2,4,7]: 5 / sqrt(2 * 114 / 9).
    assert metrics.pearson_correlation([1, 2, 3], [2, 4, 7]) == pytest.approx(
        5 / math.sqrt(2 * 114 / 9)
    )
    np.testing.assert_allclose(metrics.rank_data([10, 20, 20, 5, 20]), [2, 4, 4, 1, 4])
    # Ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5).
    assert metrics.spearman_correlation([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(
        4.5 / math.sqrt(22.5)
    )
    # A monotone but non-linear relation: Spearman 1, Pearson below 1.
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.spearman_correlation(x, x**3) == pytest.approx(1.0)
    assert metrics.pearson_correlation(x, x**3) < 0.99
    both = metrics.pearson_spearman_correlation(x, x**3)
    assert both == pytest.approx((metrics.pearson_correlation(x, x**3) + 1.0) / 2)
    assert math.isnan(metrics.pearson_correlation([1, 2, 3], [4, 4, 4]))


def test_classification_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="equally long"):
        metrics.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="empty"):
        metrics.matthews_corrcoef([], [])
    assert metrics.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    # TP=1, FP=1, FN=1: 2 / (2 + 2).
    assert metrics.f1_score([1, 0, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.5)


def test_squad_normalization_exact_match_and_f1():
    assert metrics.normalize_answer("The Cat's  hat!") == "cats hat"
    assert metrics.normalize_answer("an apple, a pear") == "apple pear"
    assert metrics.exact_match("the Eiffel Tower.", ["Eiffel tower", "Paris"]) == 1.0
    assert metrics.exact_match("Tower", "Eiffel Tower") == 0.0
    # [cat, sat] vs [cat, sat, on, mat]: precision 1, recall 1/2.
    assert metrics.f1("the cat sat", "a cat sat on mat") == pytest.approx(2 / 3)
    assert metrics.f1("the cat sat", ["dog", "cat sat"]) == pytest.approx(1.0)
    assert metrics.f1("dog", "cat") == 0.0


def test_squad_evaluate_matches_model_garden_keys_and_scale(tmp_path):
    dataset = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "unused",
                        "qas": [
                            {"id": "q1", "answers": [{"text": "Denver Broncos"}]},
                            {"id": "q2", "answers": [{"text": "the cat sat on mat"}]},
                            {"id": "q3", "answers": [{"text": "1995"}]},
                            {"id": "q4", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ]
    }
    predictions = {"q1": "Denver Broncos", "q2": "cat sat", "q4": ""}
    # q1: 1/1; q2: EM 0, F1 2*(1*0.5)/1.5; q3 unanswered: 0; q4: empty = right.
    expected = {"exact_match": 2 / 4, "final_f1": (1 + 2 / 3 + 0 + 1) / 4}
    result = metrics.squad_evaluate(dataset, predictions)
    assert result == pytest.approx(expected)
    data_file, prediction_file = tmp_path / "dev.json", tmp_path / "predictions.json"
    data_file.write_text(json.dumps(dataset))
    prediction_file.write_text(json.dumps(predictions))
    assert metrics.squad_evaluate(str(data_file), str(prediction_file)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no top-level `data`"):
        metrics.squad_evaluate({"version": "1.1"}, predictions)


def test_entities_in_iob2_iob1_and_iobes():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O", "I-ORG"]
    assert metrics.get_entities(tags) == [("PER", 0, 1), ("LOC", 3, 5), ("ORG", 7, 7)]
    iobes = ["S-PER", "B-LOC", "E-LOC", "O", "B-ORG", "I-ORG", "E-ORG", "S-PER", "S-PER"]
    assert metrics.get_entities(iobes) == [
        ("PER", 0, 0),
        ("LOC", 1, 2),
        ("ORG", 4, 6),
        ("PER", 7, 7),
        ("PER", 8, 8),
    ]
    # A change of type splits a span; B- after I- of the same type starts a new one.
    assert metrics.get_entities(["B-PER", "I-LOC", "B-LOC"]) == [
        ("PER", 0, 0),
        ("LOC", 1, 1),
        ("LOC", 2, 2),
    ]
    # Spans never cross sentences.
    assert metrics.get_entities([["O", "B-PER"], ["I-PER"]]) == [("PER", 1, 1), ("PER", 2, 2)]
    with pytest.raises(ValueError, match="X-PER"):
        metrics.get_entities(["X-PER"])


def test_span_scores_and_token_accuracy():
    # seqeval's documented example: one of two spans right on each side.
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    scores = metrics.span_precision_recall_f1(gold, predicted)
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert scores["per_type"]["PER"] == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    )
    assert scores["per_type"]["MISC"]["f1"] == 0.0
    label_ids = np.array([[-1, 1, 2, -1, 0, -1], [-1, 0, 1, -1, -1, -1]])
    predicted_ids = np.array([[3, 1, 0, 3, 0, 3], [0, 0, 1, 2, 2, 2]])
    assert metrics.token_accuracy(label_ids, predicted_ids) == pytest.approx(4 / 5)
    gold_tags, predicted_tags = metrics.tag_sequences_from_ids(
        label_ids, predicted_ids, ["O", "B-PER", "I-PER", "B-LOC"]
    )
    assert gold_tags == [["B-PER", "I-PER", "O"], ["O", "B-PER"]]
    assert predicted_tags == [["B-PER", "O", "O"], ["O", "B-PER"]]
    with pytest.raises(ValueError, match="no token is scored"):
        metrics.token_accuracy([-1, -1], [0, 0])
