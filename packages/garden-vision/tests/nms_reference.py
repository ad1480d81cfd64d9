"""NumPy references of box IoU and non-maximum suppression shared by the detection tests."""

from __future__ import annotations

import math

import numpy as np


def iou(a, b):
    """IoU of two yxyx boxes (0 when the union is empty)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes, scores, max_output, iou_threshold, score_threshold, sigma=None):
    """Greedy (or, with `sigma`, TensorFlow's soft) NMS: (indices, scores) kept in order."""
    scores = scores.astype(np.float64).copy()
    alive = [i for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold]
    kept, kept_scores = [], []
    while alive and len(kept) < max_output:
        best = max(alive, key=lambda i: scores[i])
        alive.remove(best)
        kept.append(best)
        kept_scores.append(scores[best])
        for i in list(alive):
            overlap = iou(boxes[best], boxes[i])
            if sigma is None:
                scores[i] = scores[i] if overlap <= iou_threshold else -np.inf
            else:
                scores[i] *= math.exp(-0.5 * overlap * overlap / sigma)
            if scores[i] <= score_threshold:
                alive.remove(i)
    return kept, kept_scores
