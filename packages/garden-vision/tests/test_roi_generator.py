"""MultilevelROIGenerator: hand-built anchors and scores, and a NumPy proposal pipeline.

The reference decodes (Faster R-CNN coder), clips, filters small boxes, keeps the per-level
top-k above the score threshold, runs greedy NMS per level and keeps the best proposals
over all levels, all in NumPy written here.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.modeling.layers.roi_generator import MultilevelROIGenerator
from garden_vision.ops.anchor import Anchor

IMAGE_SHAPE = np.array([[64, 64], [56, 48]], np.float32)
ANCHORS = Anchor(2, 3, 1, [0.5, 1.0, 2.0], 4.0, [64, 64]).multilevel_boxes  # 3 per cell.


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _iou(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _rpn_outputs(seed, batch=2):
    rng = np.random.default_rng(seed)
    raw_boxes, raw_scores = {}, {}
    for level, anchors in ANCHORS.items():
        height, width, _ = anchors.shape
        raw_boxes[level] = rng.normal(0, 0.4, (batch, height, width, 12)).astype(np.float32)
        raw_scores[level] = rng.normal(0, 2, (batch, height, width, 3)).astype(np.float32)
    return raw_boxes, raw_scores


def numpy_proposals(
    raw_boxes, raw_scores, image, top_k, score_threshold, min_size, iou, count, batched=False
):
    """(scores, boxes) of one image's proposals, best first (no padding).

    Per level, the filtered boxes' `top_k` best enter NMS, which keeps at most `count`; with
    `batched` (combined NMS) every filtered box enters and at most `min(top_k, count)` stay.
    """
    height, width = image
    candidates = []
    for level in sorted(raw_boxes, key=int):
        scores = _sigmoid(raw_scores[level].reshape(-1).astype(np.float64))
        encoded = raw_boxes[level].reshape(-1, 4).astype(np.float64)
        anchors = ANCHORS[level].numpy().reshape(-1, 4).astype(np.float64)
        ah, aw = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        cy = encoded[:, 0] * ah + anchors[:, 0] + ah / 2
        cx = encoded[:, 1] * aw + anchors[:, 1] + aw / 2
        h = np.exp(np.minimum(encoded[:, 2], math.log(1000 / 16))) * ah
        w = np.exp(np.minimum(encoded[:, 3], math.log(1000 / 16))) * aw
        boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], -1)
        boxes = np.clip(boxes, 0, [height, width, height, width])
        keep = scores > score_threshold
        if min_size > 0:
            bh, bw = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            centre_y, centre_x = boxes[:, 0] + bh / 2, boxes[:, 1] + bw / 2
            keep &= (bh > min_size) & (bw > min_size)
            keep &= (centre_y > 0) & (centre_y < height) & (centre_x > 0) & (centre_x < width)
        keep &= boxes.max(-1) > 0
        order = [i for i in np.argsort(-scores, kind="stable") if keep[i]]
        order = order if batched else order[:top_k]
        limit = min(count, len(scores), top_k if batched else count)
        kept = []
        for i in order:
            if len(kept) < limit and all(_iou(boxes[i], boxes[j]) <= iou for j in kept):
                kept.append(i)
        candidates += [(scores[i], boxes[i]) for i in kept]
    candidates.sort(key=lambda item: -item[0])
    return candidates[:count]


def assert_proposals(rois, scores, expected, count):
    assert rois.shape == (count, 4)
    assert scores.shape == (count,)
    valid = len(expected)
    np.testing.assert_allclose(scores[:valid], [s for s, _ in expected], rtol=1e-5)
    np.testing.assert_allclose(rois[:valid], [b for _, b in expected], atol=1e-3)
    assert not scores[valid:].any()
    assert not rois[valid:].any()


def test_hand_built_anchors_and_scores():
    # Level 2 of an 8 x 8 image: four 4 x 4 anchors, one per cell.
    anchors = {
        "2": tf.constant([[[0, 0, 4, 4], [0, 4, 4, 8]], [[4, 0, 8, 4], [4, 4, 8, 8]]], tf.float32)
    }
    raw_boxes = np.zeros((1, 2, 2, 4), np.float32)
    raw_boxes[0, 0, 1, 1] = -0.75  # Anchor 1 moves 3 px left: [0, 1, 4, 5], IoU 0.6 with 0.
    logits = np.array([2.0, 1.0, 0.0, -1.0], np.float32).reshape(1, 2, 2, 1)
    generator = MultilevelROIGenerator(test_num_proposals=4, test_nms_iou_threshold=0.5)
    image_shape = np.array([[8.0, 8.0]], np.float32)
    rois, scores = generator({"2": raw_boxes}, {"2": logits}, anchors, image_shape)
    np.testing.assert_allclose(scores[0], [_sigmoid(2.0), 0.5, _sigmoid(-1.0), 0.0], rtol=1e-6)
    np.testing.assert_allclose(rois[0], [[0, 0, 4, 4], [4, 0, 8, 4], [4, 4, 8, 8], [0, 0, 0, 0]])
    # Without NMS (IoU threshold 0) the moved anchor is the second proposal.
    generator = MultilevelROIGenerator(test_num_proposals=2, test_nms_iou_threshold=0.0)
    rois, scores = generator({"2": raw_boxes}, {"2": logits}, anchors, image_shape)
    np.testing.assert_allclose(rois[0], [[0, 0, 4, 4], [0, 1, 4, 5]], atol=1e-6)


SETTINGS = {
    "default": dict(top_k=2000, score_threshold=0.0, min_size=0.0, iou=0.7, count=100),
    "filters": dict(top_k=30, score_threshold=0.4, min_size=5.0, iou=0.5, count=40),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
@pytest.mark.parametrize("use_batched_nms", [False, True])
def test_matches_numpy_pipeline(name, use_batched_nms):
    setting = SETTINGS[name]
    generator = MultilevelROIGenerator(
        pre_nms_top_k=setting["top_k"],
        pre_nms_score_threshold=setting["score_threshold"],
        pre_nms_min_size_threshold=setting["min_size"],
        nms_iou_threshold=setting["iou"],
        num_proposals=setting["count"],
        test_num_proposals=7,
        use_batched_nms=use_batched_nms,
    )
    raw_boxes, raw_scores = _rpn_outputs(seed=len(name))
    rois, scores = generator(raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE, training=True)
    for b in range(2):
        expected = numpy_proposals(
            {k: v[b] for k, v in raw_boxes.items()},
            {k: v[b] for k, v in raw_scores.items()},
            IMAGE_SHAPE[b],
            **setting,
            batched=use_batched_nms,
        )
        assert_proposals(rois[b].numpy(), scores[b].numpy(), expected, setting["count"])
    # Inference uses the test_* settings.
    rois, scores = generator(raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE, training=False)
    assert rois.shape == (2, 7, 4)
    assert scores.shape == (2, 7)


def test_serialization_graph_mode_and_errors():
    generator = MultilevelROIGenerator(
        num_proposals=50, test_num_proposals=20, use_batched_nms=True, name="rpn_rois"
    )
    config = generator.get_config()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(generator))
    assert isinstance(clone, MultilevelROIGenerator)
    assert clone.get_config() == config
    assert config["test_num_proposals"] == 20
    assert config["use_batched_nms"] is True

    raw_boxes, raw_scores = _rpn_outputs(seed=7, batch=3)
    specs = (
        {k: tf.TensorSpec([None, *v.shape[1:]], tf.float32) for k, v in raw_boxes.items()},
        {k: tf.TensorSpec([None, *v.shape[1:]], tf.float32) for k, v in raw_scores.items()},
    )

    @tf.function(input_signature=[*specs, tf.TensorSpec([None, 2], tf.float32)])
    def propose(boxes, scores, image_shape):
        return MultilevelROIGenerator(num_proposals=50)(
            boxes, scores, ANCHORS, image_shape, training=True
        )

    image_shape = np.tile(IMAGE_SHAPE[:1], [3, 1])
    rois, scores = propose(raw_boxes, raw_scores, image_shape)
    eager_rois, eager_scores = MultilevelROIGenerator(num_proposals=50)(
        raw_boxes, raw_scores, ANCHORS, image_shape, training=True
    )
    np.testing.assert_allclose(rois.numpy(), eager_rois.numpy(), atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), eager_scores.numpy(), rtol=1e-6)

    with pytest.raises(ValueError, match="raw_boxes levels"):
        generator({"2": raw_boxes["2"]}, raw_scores, ANCHORS, image_shape)
    with pytest.raises(ValueError, match="num_proposals"):
        MultilevelROIGenerator(num_proposals=0)
