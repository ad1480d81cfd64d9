"""DetectionGenerator (second stage): class-specific boxes, softmax scores, per-class NMS.

The NumPy reference decodes each class's box against its ROI (Faster R-CNN coder with
weights [10, 10, 5, 5]), clips it, applies softmax (or sigmoid), drops the background,
keeps each class's `pre_nms_top_k` best, runs greedy (or TensorFlow's soft) NMS per class
and merges the best detections over classes.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from nms_reference import nms as _nms

from garden_vision.modeling.layers.detection_generator import DetectionGenerator

WEIGHTS = [10.0, 10.0, 5.0, 5.0]
NUM_CLASSES = 4  # Background + 3.
IMAGE_SHAPE = np.array([[60, 60], [50, 40]], np.float32)


def _head_outputs(seed, batch=2, num_rois=24):
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 35, (batch, num_rois, 2))
    rois = np.concatenate([corners, corners + rng.uniform(4, 20, (batch, num_rois, 2))], -1)
    box_outputs = rng.normal(0, 1.0, (batch, num_rois, NUM_CLASSES * 4))
    class_outputs = rng.normal(0, 2.0, (batch, num_rois, NUM_CLASSES))
    return box_outputs.astype(np.float32), class_outputs.astype(np.float32), rois.astype(np.float32)


def numpy_decode(box_outputs, class_outputs, rois, per_class=True, sigmoid=False):
    """Boxes [B, N, q, 4] and foreground scores [B, N, C - 1]."""
    batch, count = class_outputs.shape[:2]
    encoded = box_outputs.reshape(batch, count, -1, 4).astype(np.float64)
    if per_class:
        encoded = encoded[:, :, 1:]
    encoded = encoded / np.array(WEIGHTS)
    rois = rois.astype(np.float64)[:, :, None]
    heights, widths = rois[..., 2] - rois[..., 0], rois[..., 3] - rois[..., 1]
    cy = encoded[..., 0] * heights + rois[..., 0] + heights / 2
    cx = encoded[..., 1] * widths + rois[..., 1] + widths / 2
    h = np.exp(np.minimum(encoded[..., 2], math.log(1000 / 16))) * heights
    w = np.exp(np.minimum(encoded[..., 3], math.log(1000 / 16))) * widths
    boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], -1)
    limits = np.concatenate([IMAGE_SHAPE, IMAGE_SHAPE], -1)[:, None, None, :]
    boxes = np.clip(boxes, 0, limits)
    logits = class_outputs.astype(np.float64)
    if sigmoid:
        scores = 1 / (1 + np.exp(-logits))
    else:
        scores = np.exp(logits - logits.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
    return boxes, scores[..., 1:]


def numpy_detections(boxes, scores, max_det, iou, threshold, top_k, sigma=None):
    """Per image: (score, class, box) of the detections, best first."""
    results = []
    for image_boxes, image_scores in zip(boxes, scores, strict=True):
        candidates = []
        for c in range(image_scores.shape[-1]):
            class_boxes = image_boxes[:, min(c, image_boxes.shape[1] - 1)]
            order = np.argsort(-image_scores[:, c], kind="stable")[:top_k]
            kept, kept_scores = _nms(
                class_boxes[order], image_scores[order, c], max_det, iou, threshold, sigma
            )
            for index, score in zip(kept, kept_scores, strict=True):
                candidates.append((score, c + 1, class_boxes[order[index]]))
        results.append(sorted(candidates, key=lambda item: -item[0])[:max_det])
    return results


def assert_detections(detections, expected, max_det):
    for b, image in enumerate(expected):
        count = len(image)
        assert int(detections["num_detections"][b]) == count
        np.testing.assert_allclose(
            detections["detection_scores"][b, :count], [s for s, _, _ in image], rtol=1e-5
        )
        np.testing.assert_array_equal(
            detections["detection_classes"][b, :count], [c for _, c, _ in image]
        )
        np.testing.assert_allclose(
            detections["detection_boxes"][b, :count], [box for _, _, box in image], atol=1e-3
        )
        assert not detections["detection_scores"][b, count:].numpy().any()
        assert not detections["detection_classes"][b, count:].numpy().any()
    assert detections["detection_boxes"].shape == (len(expected), max_det, 4)


@pytest.mark.parametrize("nms_version", ["batched", "v1", "v2"])
@pytest.mark.parametrize("bbox_per_class", [True, False])
def test_nms_versions_match_numpy(nms_version, bbox_per_class):
    box_outputs, class_outputs, rois = _head_outputs(seed=0)
    if not bbox_per_class:
        box_outputs = box_outputs[..., :4]
    generator = DetectionGenerator(
        nms_version=nms_version,
        max_num_detections=15,
        pre_nms_score_threshold=0.1,
        nms_iou_threshold=0.4,
        pre_nms_top_k=12,
    )
    detections = generator(
        box_outputs,
        class_outputs,
        rois,
        IMAGE_SHAPE,
        regression_weights=WEIGHTS,
        bbox_per_class=bbox_per_class,
    )
    boxes, scores = numpy_decode(box_outputs, class_outputs, rois, per_class=bbox_per_class)
    # "batched" (combined NMS) ignores pre_nms_top_k.
    top_k = None if nms_version == "batched" else 12
    expected = numpy_detections(boxes, scores, 15, 0.4, 0.1, top_k)
    assert_detections(detections, expected, 15)


def test_soft_nms_sigmoid_scores_and_decoded_outputs():
    box_outputs, class_outputs, rois = _head_outputs(seed=1)
    generator = DetectionGenerator(nms_version="v1", soft_nms_sigma=0.5, max_num_detections=10)
    detections = generator(
        box_outputs, class_outputs, rois, IMAGE_SHAPE, regression_weights=WEIGHTS
    )
    boxes, scores = numpy_decode(box_outputs, class_outputs, rois)
    expected = numpy_detections(boxes, scores, 10, 0.5, 0.05, 5000, sigma=0.5)
    assert_detections(detections, expected, 10)

    raw = DetectionGenerator(apply_nms=False, use_sigmoid_probability=True)(
        box_outputs, class_outputs, rois, IMAGE_SHAPE, regression_weights=WEIGHTS
    )
    assert sorted(raw) == ["decoded_box_scores", "decoded_boxes"]
    boxes, scores = numpy_decode(box_outputs, class_outputs, rois, sigmoid=True)
    np.testing.assert_allclose(raw["decoded_boxes"].numpy(), boxes, atol=1e-3)
    np.testing.assert_allclose(raw["decoded_box_scores"].numpy(), scores, rtol=1e-5)
    assert raw["decoded_boxes"].shape == (2, 24, NUM_CLASSES - 1, 4)


def test_serialization_graph_mode_mixed_precision_and_errors():
    generator = DetectionGenerator(nms_version="v1", use_cpu_nms=True, name="frcnn_detections")
    config = generator.get_config()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(generator))
    assert isinstance(clone, DetectionGenerator)
    assert clone.get_config() == config
    assert config["nms_version"] == "v1"
    assert DetectionGenerator().get_config()["nms_version"] == "v2"  # Model Garden's default.

    box_outputs, class_outputs, rois = _head_outputs(seed=2, batch=3)
    specs = [
        tf.TensorSpec([None, None, NUM_CLASSES * 4]),
        tf.TensorSpec([None, None, NUM_CLASSES]),
        tf.TensorSpec([None, None, 4]),
        tf.TensorSpec([None, 2]),
    ]

    @tf.function(input_signature=specs)
    def detect(boxes, scores, anchors, image_shape):
        return clone(boxes, scores, anchors, image_shape, regression_weights=WEIGHTS)

    image_shape = np.tile(IMAGE_SHAPE[:1], [3, 1])
    graph = detect(box_outputs, class_outputs, rois, image_shape)
    eager = clone(box_outputs, class_outputs, rois, image_shape, regression_weights=WEIGHTS)
    for key in ("num_detections", "detection_classes"):
        np.testing.assert_array_equal(graph[key].numpy(), eager[key].numpy())
    np.testing.assert_allclose(graph["detection_boxes"], eager["detection_boxes"], atol=1e-4)

    half = DetectionGenerator()(
        tf.cast(box_outputs, tf.bfloat16),
        tf.cast(class_outputs, tf.bfloat16),
        rois,
        image_shape,
        regression_weights=WEIGHTS,
    )
    assert half["detection_boxes"].dtype == tf.float32

    with pytest.raises(ValueError, match="nms_version 'tflite'"):
        DetectionGenerator(nms_version="tflite")
    with pytest.raises(ValueError, match="soft_nms_sigma"):
        DetectionGenerator(nms_version="v2", soft_nms_sigma=0.5)
    with pytest.raises(ValueError, match="num_classes \\* 4 = 16"):
        DetectionGenerator()(box_outputs[..., :8], class_outputs, rois, image_shape)
