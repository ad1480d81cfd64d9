"""Evaluation metrics of the NLP tasks, in NumPy (no SciPy or scikit-learn).

- `classification`: `accuracy`, `f1_score`, `matthews_corrcoef` (CoLA),
  `pearson_correlation`, `spearman_correlation`, `pearson_spearman_correlation` (STS-B).
- `squad`: `normalize_answer`, `exact_match`, `f1` and `squad_evaluate` (Model Garden's
  `exact_match` / `final_f1`).
- `tagging`: `token_accuracy`, `get_entities`, `span_precision_recall_f1` (seqeval-style
  span scores over IOB1, IOB2 and IOBES tags) and `tag_sequences_from_ids`.
"""

from garden_nlp.metrics.classification import (
    accuracy,
    f1_score,
    matthews_corrcoef,
    pearson_correlation,
    pearson_spearman_correlation,
    rank_data,
    spearman_correlation,
)
from garden_nlp.metrics.squad import exact_match, f1, normalize_answer, squad_evaluate
from garden_nlp.metrics.tagging import (
    get_entities,
    span_precision_recall_f1,
    tag_sequences_from_ids,
    token_accuracy,
)

__all__ = [
    "accuracy",
    "exact_match",
    "f1",
    "f1_score",
    "get_entities",
    "matthews_corrcoef",
    "normalize_answer",
    "pearson_correlation",
    "pearson_spearman_correlation",
    "rank_data",
    "span_precision_recall_f1",
    "spearman_correlation",
    "squad_evaluate",
    "tag_sequences_from_ids",
    "token_accuracy",
]
