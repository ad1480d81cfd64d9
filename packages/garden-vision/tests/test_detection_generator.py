"""MultilevelDetectionGenerator: every NMS version against a NumPy reference, and the TFLite
path converted with TensorFlow Lite's converter and run in its interpreter.

The reference decodes boxes (Faster R-CNN coder), applies sigmoid, drops background, runs
greedy (or soft) NMS per class and merges the best detections, all in NumPy written here.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from nms_reference import nms as _nms

from garden_vision.modeling.layers.detection_generator import (
    MultilevelDetectionGenerator,
    tflite_converter,
)
from garden_vision.ops.anchor import Anchor

IMAGE = 64
NUM_CLASSES = 4  # Background + 3.
ANCHORS = Anchor(3, 4, 1, [1.0, 2.0], 4.0, [IMAGE, IMAGE]).multilevel_boxes  # 2 per cell.


def _outputs(batch, seed=0, box_noise=0.2):
    rng = np.random.default_rng(seed)
    raw_boxes, raw_scores = {}, {}
    for level, anchors in ANCHORS.items():
        height, width, _ = anchors.shape
        raw_boxes[level] = rng.normal(0, box_noise, (batch, height, width, 8)).astype(np.float32)
        raw_scores[level] = rng.normal(-1.0, 2.0, (batch, height, width, 2 * NUM_CLASSES))
        raw_scores[level] = raw_scores[level].astype(np.float32)
    return raw_boxes, raw_scores


def numpy_decode(raw_boxes, raw_scores, weights=(1.0, 1.0, 1.0, 1.0), clip=True):
    """Decoded boxes [B, N, 4], foreground scores [B, N, C - 1], anchor-major order."""
    all_boxes, all_scores = [], []
    for level in sorted(raw_boxes, key=int):
        batch = raw_boxes[level].shape[0]
        encoded = raw_boxes[level].reshape(batch, -1, 4).astype(np.float64) / weights
        anchors = ANCHORS[level].numpy().reshape(-1, 4).astype(np.float64)
        heights, widths = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        cy = encoded[..., 0] * heights + anchors[:, 0] + heights / 2
        cx = encoded[..., 1] * widths + anchors[:, 1] + widths / 2
        h = np.exp(np.minimum(encoded[..., 2], math.log(1000 / 16))) * heights
        w = np.exp(np.minimum(encoded[..., 3], math.log(1000 / 16))) * widths
        boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)
        all_boxes.append(np.clip(boxes, 0, IMAGE) if clip else boxes)
        logits = raw_scores[level].reshape(batch, -1, NUM_CLASSES).astype(np.float64)
        all_scores.append((1 / (1 + np.exp(-logits)))[..., 1:])
    return np.concatenate(all_boxes, axis=1), np.concatenate(all_scores, axis=1)


def numpy_detections(
    boxes, scores, max_det, iou, threshold, top_k=None, agnostic=False, sigma=None
):
    """Per image: a list of (score, class, anchor index) sorted by decreasing score."""
    results = []
    for image_boxes, image_scores in zip(boxes, scores, strict=True):
        if agnostic:
            columns = [(image_scores.max(-1), image_scores.argmax(-1))]
        else:
            columns = [
                (image_scores[:, c], np.full(len(image_boxes), c)) for c in range(scores.shape[-1])
            ]
        candidates = []
        for column_scores, column_classes in columns:
            order = np.argsort(-column_scores, kind="stable")[:top_k]
            kept, kept_scores = _nms(
                image_boxes[order], column_scores[order], max_det, iou, threshold, sigma
            )
            for index, score in zip(kept, kept_scores, strict=True):
                candidates.append((score, column_classes[order[index]] + 1, order[index]))
        results.append(sorted(candidates, key=lambda item: -item[0])[:max_det])
    return results


def assert_detections_equal(detections, expected, boxes, max_det):
    for b, image in enumerate(expected):
        count = len(image)
        assert int(detections["num_detections"][b]) == count
        np.testing.assert_allclose(
            detections["detection_scores"][b, :count], [s for s, _, _ in image], rtol=1e-4
        )
        np.testing.assert_array_equal(
            detections["detection_classes"][b, :count], [c for _, c, _ in image]
        )
        np.testing.assert_allclose(
            detections["detection_boxes"][b, :count],
            boxes[b, [i for _, _, i in image]].reshape(-1, 4),
            rtol=1e-4,
            atol=1e-3,
        )
        np.testing.assert_array_equal(detections["detection_scores"][b, count:], 0.0)
        np.testing.assert_array_equal(detections["detection_classes"][b, count:], 0)
        assert detections["detection_boxes"].shape == (len(expected), max_det, 4)


IMAGE_SHAPE = tf.constant([[IMAGE, IMAGE], [IMAGE, IMAGE]])


@pytest.mark.parametrize("version", ["batched", "v1", "v2"])
def test_nms_versions_match_numpy(version):
    raw_boxes, raw_scores = _outputs(batch=2)
    generator = MultilevelDetectionGenerator(
        nms_version=version,
        use_cpu_nms=version == "batched",
        max_num_detections=12,
        pre_nms_score_threshold=0.3,
        nms_iou_threshold=0.5,
    )
    detections = generator(raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE)
    assert detections["detection_classes"].dtype == tf.int32
    assert detections["num_detections"].dtype == tf.int32
    boxes, scores = numpy_decode(raw_boxes, raw_scores)
    expected = numpy_detections(boxes, scores, 12, 0.5, 0.3)
    assert_detections_equal(detections, expected, boxes, 12)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_pre_nms_top_k_and_class_agnostic(version):
    raw_boxes, raw_scores = _outputs(batch=2, seed=1)
    boxes, scores = numpy_decode(raw_boxes, raw_scores)
    generator = MultilevelDetectionGenerator(
        nms_version=version, pre_nms_top_k=6, max_num_detections=10, pre_nms_score_threshold=0.1
    )
    expected = numpy_detections(boxes, scores, 10, 0.5, 0.1, top_k=6)
    assert_detections_equal(
        generator(raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE), expected, boxes, 10
    )

    agnostic = MultilevelDetectionGenerator(
        nms_version=version,
        use_class_agnostic_nms=True,
        max_num_detections=10,
        pre_nms_score_threshold=0.1,
    )
    expected = numpy_detections(boxes, scores, 10, 0.5, 0.1, agnostic=True)
    assert_detections_equal(
        agnostic(raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE), expected, boxes, 10
    )


def test_soft_nms_v1():
    raw_boxes, raw_scores = _outputs(batch=2, seed=2)
    boxes, scores = numpy_decode(raw_boxes, raw_scores)
    generator = MultilevelDetectionGenerator(
        nms_version="v1",
        soft_nms_sigma=0.5,
        max_num_detections=15,
        pre_nms_score_threshold=0.2,
        nms_iou_threshold=0.6,
    )
    expected = numpy_detections(boxes, scores, 15, 0.6, 0.2, sigma=0.5)
    assert_detections_equal(
        generator(raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE), expected, boxes, 15
    )


def test_attributes_decoded_outputs_and_box_coder_weights():
    raw_boxes, raw_scores = _outputs(batch=2, seed=3)
    rng = np.random.default_rng(4)
    depth = {
        level: rng.normal(size=(2, *ANCHORS[level].shape[:2], 2)).astype(np.float32)
        for level in ANCHORS
    }
    generator = MultilevelDetectionGenerator(
        nms_version="v2",
        max_num_detections=8,
        return_decoded=True,
        box_coder_weights=[10, 10, 5, 5],
    )
    detections = generator(
        raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE, raw_attributes={"depth": depth}
    )
    boxes, scores = numpy_decode(raw_boxes, raw_scores, weights=(10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(detections["decoded_boxes"], boxes, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(detections["decoded_box_scores"], scores, rtol=1e-5)
    expected = numpy_detections(boxes, scores, 8, 0.5, 0.05)
    assert_detections_equal(detections, expected, boxes, 8)
    flat_depth = np.concatenate([depth[level].reshape(2, -1, 1) for level in ("3", "4")], axis=1)
    for b, image in enumerate(expected):
        anchors = [i for _, _, i in image]
        np.testing.assert_allclose(
            detections["detection_attributes"]["depth"][b, : len(image)], flat_depth[b, anchors]
        )

    raw = MultilevelDetectionGenerator(apply_nms=False)(raw_boxes, raw_scores, ANCHORS, IMAGE_SHAPE)
    assert sorted(raw) == ["decoded_box_scores", "decoded_boxes"]
    assert raw["decoded_boxes"].shape == (2, 160, 4)  # (8 * 8 + 4 * 4) cells * 2 anchors.
    assert raw["decoded_box_scores"].shape == (2, 160, NUM_CLASSES - 1)


def test_config_round_trip_mixed_precision_and_errors():
    generator = MultilevelDetectionGenerator(
        nms_version="tflite", tflite_post_processing_config={"max_detections": 7}, name="gen"
    )
    config = generator.get_config()
    assert config["tflite_post_processing_config"] == {"max_detections": 7}
    rebuilt = MultilevelDetectionGenerator.from_config(config)
    assert rebuilt.get_config() == config
    assert keras.saving.get_registered_object("garden_vision>MultilevelDetectionGenerator")

    raw_boxes, raw_scores = _outputs(batch=2, seed=5)
    half = {
        name: {k: tf.cast(v, tf.bfloat16) for k, v in d.items()}
        for name, d in (("b", raw_boxes), ("s", raw_scores))
    }
    detections = MultilevelDetectionGenerator(nms_version="batched")(
        half["b"], half["s"], ANCHORS, IMAGE_SHAPE
    )
    assert detections["detection_boxes"].dtype == tf.float32

    with pytest.raises(ValueError, match="nms_version 'v3'"):
        MultilevelDetectionGenerator(nms_version="v3")
    with pytest.raises(ValueError, match="soft_nms_sigma"):
        MultilevelDetectionGenerator(nms_version="v2", soft_nms_sigma=0.5)
    with pytest.raises(ValueError, match="use_class_agnostic_nms"):
        MultilevelDetectionGenerator(nms_version="batched", use_class_agnostic_nms=True)
    with pytest.raises(ValueError, match="max_detection"):
        MultilevelDetectionGenerator(
            nms_version="tflite", tflite_post_processing_config={"max_detection": 5}
        )
    with pytest.raises(ValueError, match="raw_scores levels"):
        MultilevelDetectionGenerator()(raw_boxes, {"3": raw_scores["3"]}, ANCHORS, IMAGE_SHAPE)


def _tflite_config(**overrides):
    config = {
        "max_detections": 10,
        "max_classes_per_detection": 1,
        "use_regular_nms": True,
        "nms_score_threshold": 0.3,
        "nms_iou_threshold": 0.5,
    }
    config.update(overrides)
    return config


def test_tflite_path_in_tensorflow_matches_other_versions():
    raw_boxes, raw_scores = _outputs(batch=2, seed=6)
    boxes, scores = numpy_decode(raw_boxes, raw_scores, clip=False)
    # Regular NMS: per class, like "batched" (the op does not clip boxes: neither do we here).
    regular = MultilevelDetectionGenerator(
        nms_version="tflite", tflite_post_processing_config=_tflite_config()
    )
    expected = numpy_detections(boxes, scores, 10, 0.5, 0.3)
    assert_detections_equal(regular(raw_boxes, raw_scores, ANCHORS), expected, boxes, 10)
    batched = MultilevelDetectionGenerator(
        nms_version="batched", max_num_detections=10, pre_nms_score_threshold=0.3
    )
    assert_detections_equal(batched(raw_boxes, raw_scores, ANCHORS), expected, boxes, 10)

    # omit_nms: every decoded box with its foreground scores, for NMS in the application.
    omitted = MultilevelDetectionGenerator(
        nms_version="tflite", tflite_post_processing_config=_tflite_config(omit_nms=True)
    )(raw_boxes, raw_scores, ANCHORS)
    np.testing.assert_allclose(omitted["detection_boxes"], boxes, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(omitted["detection_scores"], scores, rtol=1e-5)
    np.testing.assert_array_equal(omitted["detection_classes"], scores.argmax(-1) + 1)
    np.testing.assert_array_equal(omitted["num_detections"], [160, 160])

    # Fast NMS with two classes per box: class-agnostic NMS on each box's best score, then
    # its two best classes in consecutive entries; boxes normalized to the image.
    fast = MultilevelDetectionGenerator(
        nms_version="tflite",
        tflite_post_processing_config=_tflite_config(
            use_regular_nms=False,
            max_classes_per_detection=2,
            normalize_anchor_coordinates=True,
            input_image_size=[IMAGE, IMAGE],
        ),
    )
    detections = fast(raw_boxes, raw_scores, ANCHORS)
    agnostic = numpy_detections(boxes, scores, 10, 0.5, 0.3, agnostic=True)
    for b, image in enumerate(agnostic):
        assert int(detections["num_detections"][b]) == 2 * len(image)
        for k, (_, _, anchor) in enumerate(image):
            best_two = np.argsort(-scores[b, anchor])[:2]
            np.testing.assert_array_equal(
                detections["detection_classes"][b, 2 * k : 2 * k + 2], best_two + 1
            )
            np.testing.assert_allclose(
                detections["detection_scores"][b, 2 * k : 2 * k + 2],
                scores[b, anchor, best_two],
                rtol=1e-5,
            )
            for j in (2 * k, 2 * k + 1):
                np.testing.assert_allclose(
                    detections["detection_boxes"][b, j],
                    boxes[b, anchor] / IMAGE,
                    rtol=1e-4,
                    atol=1e-5,
                )


def test_tflite_conversion_runs_the_builtin_op_and_matches_batched():
    raw_boxes, raw_scores = _outputs(batch=1, seed=7)
    # detections_per_class=1 is recorded in the signature but TensorFlow's converter does not
    # forward it: the kernel keeps up to 100 boxes per class, as the TensorFlow body does.
    generator = MultilevelDetectionGenerator(
        nms_version="tflite", tflite_post_processing_config=_tflite_config(detections_per_class=1)
    )
    specs = [
        tf.TensorSpec([1, *raw_boxes[level].shape[1:]], tf.float32, f"boxes_{level}")
        for level in ("3", "4")
    ]
    specs += [
        tf.TensorSpec([1, *raw_scores[level].shape[1:]], tf.float32, f"scores_{level}")
        for level in ("3", "4")
    ]

    @tf.function(input_signature=specs)
    def serve(boxes_3, boxes_4, scores_3, scores_4):
        return generator({"3": boxes_3, "4": boxes_4}, {"3": scores_3, "4": scores_4}, ANCHORS)

    flatbuffer = tflite_converter(serve.get_concrete_function()).convert()
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    # The function became the builtin custom op (its TensorFlow body is gone).
    assert b"TFLite_Detection_PostProcess" in flatbuffer
    assert b"CombinedNonMaxSuppression" not in flatbuffer
    runner = interpreter.get_signature_runner()
    lite = runner(
        boxes_3=raw_boxes["3"],
        boxes_4=raw_boxes["4"],
        scores_3=raw_scores["3"],
        scores_4=raw_scores["4"],
    )
    reference = MultilevelDetectionGenerator(
        nms_version="batched", max_num_detections=10, pre_nms_score_threshold=0.3
    )(raw_boxes, raw_scores, ANCHORS)
    count = int(reference["num_detections"][0])
    assert count > 3  # Several classes keep several boxes each.
    assert int(lite["num_detections"][0]) == count
    np.testing.assert_array_equal(lite["detection_classes"][0], reference["detection_classes"][0])
    np.testing.assert_allclose(
        lite["detection_scores"][0], reference["detection_scores"][0], rtol=1e-5
    )
    np.testing.assert_allclose(
        lite["detection_boxes"][0], reference["detection_boxes"][0], rtol=1e-4, atol=1e-3
    )
