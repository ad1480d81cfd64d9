"""Sentence-level metrics of GLUE-style tasks, in NumPy.

- `accuracy`: the share of predictions equal to the labels.
- `f1_score`: binary F1 of one positive class (MRPC, QQP).
- `matthews_corrcoef`: Matthews correlation, binary and multiclass (CoLA).
- `pearson_correlation`, `spearman_correlation` and their mean
  `pearson_spearman_correlation` (STS-B; Model Garden's `pearson_spearman_corr`).

Every function takes two equally long 1-D sequences (lists or arrays; other shapes are
flattened) and returns a Python float. Values match scikit-learn's and SciPy's: an
undefined Matthews correlation (constant labels or predictions) is 0, an undefined Pearson
or Spearman correlation (constant input) is NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ArrayLike = Any
"""A list, tuple or NumPy array of numbers."""


def _pair(labels: ArrayLike, predictions: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"`labels` has {labels.size} values but `predictions` has {predictions.size}; "
            "they must be equally long"
        )
    if labels.size == 0:
        raise ValueError("`labels` and `predictions` are empty; a metric needs at least one value")
    return labels, predictions


def accuracy(labels: ArrayLike, predictions: ArrayLike) -> float:
    """The share of predictions equal to their labels.

    Args:
        labels: The true class ids.
        predictions: The predicted class ids.
    """
    labels, predictions = _pair(labels, predictions)
    return float(np.mean(labels == predictions))


def f1_score(labels: ArrayLike, predictions: ArrayLike, positive_label: Any = 1) -> float:
    """Binary F1 of the class `positive_label` (0 when it is never predicted nor true).

    Args:
        labels: The true class ids.
        predictions: The predicted class ids.
        positive_label: The class whose precision and recall are combined.
    """
    labels, predictions = _pair(labels, predictions)
    true = labels == positive_label
    predicted = predictions == positive_label
    true_positives = float(np.sum(true & predicted))
    denominator = float(np.sum(true) + np.sum(predicted))
    return 0.0 if denominator == 0 else 2.0 * true_positives / denominator


def matthews_corrcoef(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Matthews correlation coefficient of class predictions, binary or multiclass.

    The multiclass form (Gorodkin, 2004) over the confusion matrix; for two classes it is
    the usual `(TP*TN - FP*FN) / sqrt(...)`. When every label or every prediction is one
    class the coefficient is undefined and 0 is returned, as scikit-learn does.

    Args:
        labels: The true class ids (or any hashable class values).
        predictions: The predicted class ids.

    Returns:
        A value in [-1, 1]: 1 for perfect predictions, 0 for chance level.
    """
    labels, predictions = _pair(labels, predictions)
    classes, encoded = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    num_classes = len(classes)
    true_ids, predicted_ids = encoded[: labels.size], encoded[labels.size :]
    confusion = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(confusion, (true_ids, predicted_ids), 1.0)
    true_counts = confusion.sum(axis=1)
    predicted_counts = confusion.sum(axis=0)
    correct = np.trace(confusion)
    total = confusion.sum()
    covariance = correct * total - np.dot(true_counts, predicted_counts)
    variance_true = total**2 - np.dot(true_counts, true_counts)
    variance_predicted = total**2 - np.dot(predicted_counts, predicted_counts)
    if variance_true == 0 or variance_predicted == 0:
        return 0.0
    return float(covariance / np.sqrt(variance_true * variance_predicted))


def pearson_correlation(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Pearson's linear correlation; NaN when either input is constant (as SciPy).

    Args:
        labels: The true values.
        predictions: The predicted values.
    """
    labels, predictions = _pair(labels, predictions)
    x = labels.astype(np.float64) - np.mean(labels, dtype=np.float64)
    y = predictions.astype(np.float64) - np.mean(predictions, dtype=np.float64)
    norm = np.sqrt(np.dot(x, x) * np.dot(y, y))
    if norm == 0:
        return float("nan")
    return float(np.clip(np.dot(x, y) / norm, -1.0, 1.0))


def rank_data(values: ArrayLike) -> np.ndarray:
    """Ranks from 1, ties getting the average of the ranks they span (SciPy's `average`).

    Args:
        values: A 1-D sequence of numbers.
    """
    values = np.asarray(values).reshape(-1)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start of each run of equal values in sorted order.
    starts = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    run_ids = np.cumsum(starts) - 1
    run_starts = np.flatnonzero(starts)
    run_ends = np.concatenate([run_starts[1:], [values.size]])
    average_ranks = (run_starts + run_ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = average_ranks[run_ids]
    return ranks


def spearman_correlation(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Spearman's rank correlation: Pearson's over average ranks (ties share a rank).

    Args:
        labels: The true values.
        predictions: The predicted values.
    """
    labels, predictions = _pair(labels, predictions)
    return pearson_correlation(rank_data(labels), rank_data(predictions))


def pearson_spearman_correlation(labels: ArrayLike, predictions: ArrayLike) -> float:
    """The mean of Pearson's and Spearman's correlations (STS-B's single score).

    Args:
        labels: The true values.
        predictions: The predicted values.
    """
    return (
        pearson_correlation(labels, predictions) + spearman_correlation(labels, predictions)
    ) / 2
