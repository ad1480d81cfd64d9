"""COCOEvaluator and coco_utils: metrics worked out by hand on tiny cases, and pycocotools run
directly on the same COCO JSON as the reference for random cases, per category, after
rescaling by image_info, and with ground truth from a file or gathered from the data."""

import json
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import coco as coco_api
from pycocotools import cocoeval
from pycocotools import mask as mask_api

from garden_vision.evaluation import COCOEvaluator, coco_utils

BOX_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
RECALL_NAMES = ["ARmax1", "ARmax10", "ARmax100", "ARs", "ARm", "ARl"]
ALL_NAMES = BOX_NAMES + RECALL_NAMES
# 101-point interpolation: precision 1 up to recall 0.5 covers the thresholds 0.00..0.50.
HALF_RECALL_AP = 51 / 101


def _groundtruths(images, max_instances=4):
    """images: [(image_id, height, width, [(yxyx box, class, is_crowd), ...])] -> one batch."""
    batch = len(images)
    boxes = -np.ones((batch, max_instances, 4), np.float32)
    classes = -np.ones((batch, max_instances), np.int32)
    crowds = np.zeros((batch, max_instances), np.int32)
    areas = -np.ones((batch, max_instances), np.float32)
    for j, (_, _, _, objects) in enumerate(images):
        for k, (box, label, crowd) in enumerate(objects):
            boxes[j, k] = box
            classes[j, k] = label
            crowds[j, k] = crowd
            areas[j, k] = (box[2] - box[0]) * (box[3] - box[1])
    return {
        "source_id": np.array([i[0] for i in images], np.int64),
        "height": np.array([i[1] for i in images], np.int32),
        "width": np.array([i[2] for i in images], np.int32),
        "num_detections": np.array([len(i[3]) for i in images], np.int32),
        "boxes": boxes,
        "classes": classes,
        "is_crowds": crowds,
        "areas": areas,
    }


def _predictions(images, max_detections=5, scales=None):
    """images: [(image_id, [(yxyx box, class, score), ...])] -> one batch in original pixels,
    or scaled by `scales` [(y_scale, x_scale)] with the matching image_info."""
    batch = len(images)
    boxes = np.zeros((batch, max_detections, 4), np.float32)
    classes = np.zeros((batch, max_detections), np.int32)
    scores = np.zeros((batch, max_detections), np.float32)
    info = np.zeros((batch, 4, 2), np.float32)
    for j, (_, detections) in enumerate(images):
        scale = np.ones(2) if scales is None else np.asarray(scales[j], np.float64)
        info[j] = [[100, 100], [100, 100], scale, [0, 0]]
        for k, (box, label, score) in enumerate(detections):
            boxes[j, k] = np.asarray(box) * np.tile(scale, 2)
            classes[j, k] = label
            scores[j, k] = score
    return {
        "source_id": np.array([i[0] for i in images], np.int64),
        "num_detections": np.array([len(i[1]) for i in images], np.int32),
        "detection_boxes": boxes,
        "detection_classes": classes,
        "detection_scores": scores,
        "image_info": info,
    }


def _evaluate(gt_images, pred_images, **kwargs):
    evaluator = COCOEvaluator(**kwargs)
    evaluator.update_state(_groundtruths(gt_images), _predictions(pred_images))
    return evaluator.result()


# Small (< 32^2), medium and large (> 96^2) boxes of three categories with a gap in the ids.
PERFECT_GT = [
    (1, 200, 200, [((10, 10, 30, 30), 1, 0), ((40, 40, 100, 90), 2, 0)]),
    (2, 200, 200, [((0, 0, 150, 120), 5, 0), ((150, 150, 170, 175), 1, 0)]),
]


def test_perfect_detections_score_one():
    predictions = [
        (image_id, [(box, label, 0.9 - 0.1 * k) for k, (box, label, _) in enumerate(objects)])
        for image_id, _, _, objects in PERFECT_GT
    ]
    metrics = _evaluate(PERFECT_GT, predictions)
    assert sorted(metrics) == sorted(ALL_NAMES)
    for name in ALL_NAMES:
        assert metrics[name] == pytest.approx(1.0), name


def test_half_recall_and_a_false_positive_by_hand():
    # One small ground truth found, one medium missed, one false positive ranked second.
    gt = [(1, 100, 100, [((10, 10, 30, 30), 1, 0), ((50, 50, 90, 90), 1, 0)])]
    predictions = [(1, [((10, 10, 30, 30), 1, 0.9), ((60, 0, 70, 10), 1, 0.8)])]
    metrics = _evaluate(gt, predictions)
    expected = {
        "AP": HALF_RECALL_AP,
        "AP50": HALF_RECALL_AP,
        "AP75": HALF_RECALL_AP,
        "APs": 1.0,  # the small box is found first; the small false positive comes after
        "APm": 0.0,  # the medium box is never found
        "APl": -1.0,  # no large object: COCOeval's "nothing to measure"
        "ARmax1": 0.5,
        "ARmax10": 0.5,
        "ARmax100": 0.5,
        "ARs": 1.0,
        "ARm": 0.0,
        "ARl": -1.0,
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value), name


def test_iou_062_matches_three_of_ten_thresholds():
    # IoU 62 / 100 passes the thresholds 0.50, 0.55 and 0.60 only.
    gt = [(1, 100, 100, [((0, 0, 10, 10), 3, 0)])]
    predictions = [(1, [((0, 0, 10, 6.2), 3, 0.7)])]
    metrics = _evaluate(gt, predictions)
    assert metrics["AP"] == pytest.approx(0.3)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP75"] == pytest.approx(0.0)
    assert metrics["ARmax100"] == pytest.approx(0.3)


def test_padding_past_num_detections_is_ignored_and_images_without_detections_count():
    gt = [
        (1, 100, 100, [((10, 10, 60, 60), 1, 0)]),
        (2, 100, 100, [((20, 20, 70, 70), 1, 0)]),
    ]
    predictions = _predictions([(1, [((10, 10, 60, 60), 1, 0.9)]), (2, [])])
    # Confident garbage in the padding of image 2 would match its ground truth if read.
    predictions["detection_boxes"][1, :] = (20, 20, 70, 70)
    predictions["detection_classes"][1, :] = 1
    predictions["detection_scores"][1, :] = 0.99
    evaluator = COCOEvaluator()
    evaluator.update_state(_groundtruths(gt), predictions)
    metrics = evaluator.result()
    assert metrics["AP"] == pytest.approx(HALF_RECALL_AP)
    assert metrics["ARmax100"] == pytest.approx(0.5)


def test_crowd_ground_truth_neither_counts_nor_penalizes():
    gt = [(1, 100, 100, [((10, 10, 40, 40), 1, 0), ((50, 50, 95, 95), 1, 1)])]
    # The detection on the crowd region is neither a hit nor a false positive.
    predictions = [(1, [((50, 50, 95, 95), 1, 0.95), ((10, 10, 40, 40), 1, 0.5)])]
    metrics = _evaluate(gt, predictions)
    assert metrics["AP"] == pytest.approx(1.0)


def _random_case(seed, num_images=6, categories=(1, 2, 7)):
    rng = np.random.default_rng(seed)
    gt_images, pred_images = [], []
    for image_id in range(10, 10 + num_images):
        height, width = 120, 160
        objects, detections = [], []
        for _ in range(rng.integers(1, 5)):
            y0, x0 = rng.uniform(0, 80), rng.uniform(0, 100)
            box = (y0, x0, y0 + rng.uniform(4, 40), x0 + rng.uniform(4, 60))
            label = int(rng.choice(categories))
            objects.append((box, label, 0))
            if rng.uniform() < 0.8:  # a found object, with jitter
                jitter = rng.normal(0, 2.0, 4)
                detections.append((tuple(np.asarray(box) + jitter), label, rng.uniform()))
        for _ in range(rng.integers(0, 3)):  # false positives
            y0, x0 = rng.uniform(0, 80), rng.uniform(0, 100)
            box = (y0, x0, y0 + rng.uniform(4, 40), x0 + rng.uniform(4, 60))
            detections.append((box, int(rng.choice(categories)), rng.uniform()))
        gt_images.append((image_id, height, width, objects))
        pred_images.append((image_id, detections[:6]))
    return gt_images, pred_images


def _coco_json(gt_images, categories=(1, 2, 7)):
    """The COCO dataset of the test's ground truth, written by the test itself."""
    annotations = []
    for image_id, _, _, objects in gt_images:
        for box, label, crowd in objects:
            y0, x0, y1, x1 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": crowd,
                }
            )
    return {
        "images": [{"id": i, "height": h, "width": w} for i, h, w, _ in gt_images],
        "annotations": annotations,
        "categories": [{"id": c, "name": f"c{c}"} for c in categories],
    }


def _reference_stats(annotation_file, pred_images, cat_ids=None):
    """pycocotools run directly: COCO, loadRes of xywh results, COCOeval."""
    results = []
    for image_id, detections in pred_images:
        for box, label, score in detections:
            y0, x0, y1, x1 = (float(v) for v in box)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(np.float32(score)),
                }
            )
    gt = coco_api.COCO(str(annotation_file))
    coco_eval = cocoeval.COCOeval(gt, gt.loadRes(results), iouType="bbox")
    if cat_ids is not None:
        coco_eval.params.catIds = cat_ids
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats


@pytest.fixture(scope="module")
def random_case(tmp_path_factory):
    gt_images, pred_images = _random_case(seed=3)
    annotation_file = tmp_path_factory.mktemp("coco") / "instances.json"
    annotation_file.write_text(json.dumps(_coco_json(gt_images)))
    # float32 boxes, as the evaluator receives them: the reference gets the same values.
    pred_images = [
        (i, [(tuple(np.float32(box)), label, score) for box, label, score in detections])
        for i, detections in pred_images
    ]
    return gt_images, pred_images, annotation_file


def test_matches_pycocotools_on_the_same_json(random_case):
    gt_images, pred_images, annotation_file = random_case
    reference = _reference_stats(annotation_file, pred_images)
    assert 0.1 < reference[0] < 0.95  # a case with something to get wrong
    evaluator = COCOEvaluator(annotation_file=str(annotation_file))
    evaluator.update_state(None, _predictions(pred_images, max_detections=6))
    metrics = evaluator.result()
    np.testing.assert_allclose([metrics[n] for n in ALL_NAMES], reference, rtol=1e-6)


def test_annotation_file_and_gathered_groundtruths_agree_over_batches(random_case):
    gt_images, pred_images, annotation_file = random_case
    from_file = COCOEvaluator(annotation_file=str(annotation_file))
    gathered = COCOEvaluator()
    for start in (0, 2, 4):  # three batches of two images
        predictions = _predictions(pred_images[start : start + 2], max_detections=6)
        from_file.update_state(None, predictions)
        gathered.update_state(_groundtruths(gt_images[start : start + 2]), predictions)
    file_metrics, gathered_metrics = from_file.result(), gathered.result()
    for name in ALL_NAMES:
        assert gathered_metrics[name] == pytest.approx(file_metrics[name], abs=1e-9), name


def test_rescaling_by_image_info(random_case):
    gt_images, pred_images, annotation_file = random_case
    reference = _reference_stats(annotation_file, pred_images)
    # Powers of two keep the scaled boxes exact; y and x scale differently.
    scales = [(0.5, 2.0), (2.0, 2.0), (0.25, 0.5), (1.0, 4.0), (0.5, 0.5), (2.0, 0.25)]
    evaluator = COCOEvaluator(annotation_file=str(annotation_file))
    evaluator.update_state(None, _predictions(pred_images, max_detections=6, scales=scales))
    metrics = evaluator.result()
    np.testing.assert_allclose([metrics[n] for n in ALL_NAMES], reference, rtol=1e-6)
    # Without rescaling the same scaled boxes score differently.
    unscaled = COCOEvaluator(annotation_file=str(annotation_file), need_rescale_bboxes=False)
    unscaled.update_state(None, _predictions(pred_images, max_detections=6, scales=scales))
    assert unscaled.result()["AP"] < reference[0] - 0.05


def test_rescaling_adds_the_crop_offset_back():
    gt = [(1, 100, 100, [((20, 30, 60, 80), 1, 0)])]
    predictions = _predictions([(1, [((20, 30, 60, 80), 1, 0.9)])])
    # Resized by 2 then cropped at (y, x) = (10, 16): the model sees 2 * box - offset.
    predictions["detection_boxes"][0, 0] = (2 * 20 - 10, 2 * 30 - 16, 2 * 60 - 10, 2 * 80 - 16)
    predictions["image_info"][0] = [[100, 100], [200, 200], [2, 2], [10, 16]]
    evaluator = COCOEvaluator()
    evaluator.update_state(_groundtruths(gt), predictions)
    assert evaluator.result()["AP"] == pytest.approx(1.0)


def test_per_category_metrics_match_single_category_runs(random_case):
    gt_images, pred_images, annotation_file = random_case
    evaluator = COCOEvaluator(annotation_file=str(annotation_file), per_category_metrics=True)
    evaluator.update_state(None, _predictions(pred_images, max_detections=6))
    metrics = evaluator.result()
    keys = [
        "Precision mAP ByCategory",
        "Precision mAP ByCategory@50IoU",
        "Precision mAP ByCategory@75IoU",
        "Precision mAP ByCategory (small)",
        "Precision mAP ByCategory (medium)",
        "Precision mAP ByCategory (large)",
        "Recall AR@1 ByCategory",
        "Recall AR@10 ByCategory",
        "Recall AR@100 ByCategory",
        "Recall AR (small) ByCategory",
        "Recall AR (medium) ByCategory",
        "Recall AR (large) ByCategory",
    ]
    assert len(metrics) == len(ALL_NAMES) + 3 * len(keys)
    for category_id in (1, 2, 7):
        reference = _reference_stats(annotation_file, pred_images, cat_ids=[category_id])
        ours = [metrics[f"{key}/{category_id}"] for key in keys]
        np.testing.assert_allclose(ours, reference, rtol=1e-6, err_msg=str(category_id))


def test_per_category_by_hand():
    gt = [(1, 100, 100, [((10, 10, 30, 30), 1, 0), ((50, 50, 90, 90), 2, 0)])]
    gt[0][3].append(((10, 60, 30, 90), 2, 0))
    # Category 1 found; category 2: one of two found, then a false positive.
    predictions = [
        (
            1,
            [
                ((10, 10, 30, 30), 1, 0.9),
                ((50, 50, 90, 90), 2, 0.8),
                ((70, 0, 80, 10), 2, 0.7),
            ],
        )
    ]
    metrics = _evaluate(gt, predictions, per_category_metrics=True)
    assert metrics["Precision mAP ByCategory/1"] == pytest.approx(1.0)
    assert metrics["Precision mAP ByCategory/2"] == pytest.approx(HALF_RECALL_AP)
    assert metrics["Recall AR@100 ByCategory/2"] == pytest.approx(0.5)
    assert metrics["AP"] == pytest.approx((1.0 + HALF_RECALL_AP) / 2)


def test_max_num_eval_detections_names_the_recall():
    gt = [(1, 100, 100, [((10, 10, 60, 60), 1, 0)])]
    metrics = _evaluate(gt, [(1, [((10, 10, 60, 60), 1, 0.9)])], max_num_eval_detections=50)
    assert "ARmax50" in metrics
    assert "ARmax100" not in metrics
    assert metrics["ARmax50"] == pytest.approx(1.0)


def _square_mask(height, width, top, left, size):
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + size, left : left + size] = 1
    return mask


def _mask_case(crop):
    """One 64x64 image, a 20x20 square object at (10, 10); the prediction's box is exact and
    its mask is `crop` relative to the box."""
    import tensorflow as tf

    gt = _groundtruths([(7, 64, 64, [((10, 10, 30, 30), 1, 0)])], max_instances=2)
    gt["height"][:] = 64
    gt["width"][:] = 64
    png = tf.io.encode_png(_square_mask(64, 64, 10, 10, 20)[..., None]).numpy()
    gt["masks"] = np.array([[png, b""]], dtype=object)
    del gt["areas"]
    predictions = _predictions([(7, [((10, 10, 30, 30), 1, 0.9)])], max_detections=2)
    predictions["image_info"][0, 0] = (64, 64)
    masks = np.zeros((1, 2, 4, 4), np.float32)
    masks[0, 0] = crop
    predictions["detection_masks"] = masks
    return gt, predictions


def test_mask_metrics_by_hand():
    ones = np.ones((4, 4), np.float32)
    left_half = ones.copy()
    left_half[:, 2:] = 0
    evaluator = COCOEvaluator(include_mask=True)
    evaluator.update_state(*_mask_case(ones))
    metrics = evaluator.result()
    for name in ("AP", "mask_AP", "mask_AP50", "mask_AP75", "mask_ARmax100"):
        assert metrics[name] == pytest.approx(1.0), name
    assert sorted(metrics) == sorted(ALL_NAMES + [f"mask_{n}" for n in ALL_NAMES])
    # The left half of the box: mask IoU 200 / 400 = 0.5 passes the 0.50 threshold only.
    evaluator.update_state(*_mask_case(left_half))
    metrics = evaluator.result()
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["mask_AP"] == pytest.approx(0.1)
    assert metrics["mask_AP50"] == pytest.approx(1.0)
    assert metrics["mask_AP75"] == pytest.approx(0.0)


def test_mask_ground_truth_from_an_annotation_file_agrees(tmp_path):
    left_half = np.ones((4, 4), np.float32)
    left_half[:, 2:] = 0
    rle = mask_api.encode(np.asfortranarray(_square_mask(64, 64, 10, 10, 20)))
    rle["counts"] = rle["counts"].decode("ascii")
    dataset = {
        "images": [{"id": 7, "height": 64, "width": 64}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 1,
                "bbox": [10, 10, 20, 20],
                "area": 400,
                "iscrowd": 0,
                "segmentation": rle,
            }
        ],
        "categories": [{"id": 1, "name": "square"}],
    }
    path = tmp_path / "masks.json"
    path.write_text(json.dumps(dataset))
    evaluator = COCOEvaluator(annotation_file=str(path), include_mask=True)
    _, predictions = _mask_case(left_half)
    evaluator.update_state(None, predictions)
    metrics = evaluator.result()
    assert metrics["mask_AP"] == pytest.approx(0.1)
    assert metrics["mask_AP50"] == pytest.approx(1.0)


def _random_mask_case(seed, num_images=4, height=48, width=64, grid=8):
    """Random blob ground-truth masks (each filling part of its box) and predictions with
    random `grid x grid` mask probabilities over jittered boxes."""
    rng = np.random.default_rng(seed)
    gt_images, pred_images, gt_masks, pred_masks = [], [], [], []
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    for image_id in range(1, num_images + 1):
        objects, masks, detections, grids = [], [], [], []
        for _ in range(rng.integers(1, 4)):
            y0, x0 = rng.uniform(0, height - 20), rng.uniform(0, width - 24)
            box = (y0, x0, y0 + rng.uniform(8, 20), x0 + rng.uniform(8, 24))
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            radius = rng.uniform(0.35, 0.6) * min(box[2] - box[0], box[3] - box[1])
            blob = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2).astype(np.uint8)
            label = int(rng.choice((1, 3)))
            objects.append((box, label, 0))
            masks.append(blob)
            if rng.uniform() < 0.85:
                detections.append(
                    (
                        tuple(np.float32(np.asarray(box) + rng.normal(0, 1.0, 4))),
                        label,
                        float(np.float32(rng.uniform())),
                    )
                )
                disc = (
                    np.linspace(-1, 1, grid)[:, None] ** 2 + np.linspace(-1, 1, grid)[None, :] ** 2
                )
                grids.append(np.clip(1.2 - disc + rng.normal(0, 0.3, (grid, grid)), 0, 1))
        gt_images.append((image_id, height, width, objects))
        gt_masks.append(masks)
        pred_images.append((image_id, detections))
        pred_masks.append(grids)
    return gt_images, gt_masks, pred_images, pred_masks


def test_mask_metrics_match_pycocotools_segm_run_directly(tmp_path):
    import tensorflow as tf

    from garden_vision.ops import mask_ops

    height, width, grid = 48, 64, 8
    gt_images, gt_masks, pred_images, pred_masks = _random_mask_case(
        5, height=height, width=width, grid=grid
    )
    # The reference: COCO JSON with RLE ground truth, pasted predicted masks RLE-encoded by the
    # test, and pycocotools' own loadRes and COCOeval(iouType="segm").
    dataset = _coco_json(gt_images, categories=(1, 3))
    for annotation, mask in zip(dataset["annotations"], sum(gt_masks, []), strict=True):
        rle = mask_api.encode(np.asfortranarray(mask))
        annotation["area"] = float(mask_api.area(rle))
        annotation["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(dataset))
    results = []
    for (image_id, detections), grids in zip(pred_images, pred_masks, strict=True):
        for (box, label, score), probabilities in zip(detections, grids, strict=True):
            pasted = mask_ops.paste_instance_masks_yxyx(
                probabilities[None], np.asarray(box, np.float64)[None], height, width
            )[0]
            rle = mask_api.encode(np.asfortranarray(pasted))
            results.append(
                {"image_id": image_id, "category_id": label, "score": score, "segmentation": rle}
            )
    reference_gt = coco_api.COCO(str(annotation_file))
    coco_eval = cocoeval.COCOeval(reference_gt, reference_gt.loadRes(results), iouType="segm")
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    reference = coco_eval.stats
    assert 0.05 < reference[0] < 0.95  # a case with something to get wrong

    predictions = _predictions(pred_images, max_detections=4)
    predictions["image_info"][:, 0] = (height, width)
    predictions["detection_masks"] = np.zeros((len(pred_images), 4, grid, grid), np.float32)
    for j, grids in enumerate(pred_masks):
        for k, probabilities in enumerate(grids):
            predictions["detection_masks"][j, k] = probabilities
    groundtruths = _groundtruths(gt_images, max_instances=4)
    del groundtruths["areas"]
    encoded = np.full((len(gt_images), 4), b"", dtype=object)
    for j, masks in enumerate(gt_masks):
        for k, mask in enumerate(masks):
            encoded[j, k] = tf.io.encode_png(mask[..., None]).numpy()
    groundtruths["masks"] = encoded
    for evaluator, gt in (
        (COCOEvaluator(include_mask=True), groundtruths),
        (COCOEvaluator(annotation_file=str(annotation_file), include_mask=True), None),
    ):
        evaluator.update_state(gt, predictions)
        metrics = evaluator.result()
        np.testing.assert_allclose(
            [metrics[f"mask_{name}"] for name in ALL_NAMES], reference, rtol=1e-6, atol=1e-9
        )


def test_paste_instance_masks_fills_pixels_whose_centres_are_in_the_box():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y0, x0 = rng.uniform(-3, 20, 2)
        box = np.array([y0, x0, y0 + rng.uniform(1, 15), x0 + rng.uniform(1, 15)])
        pasted = coco_utils.paste_instance_masks(np.ones((1, 7, 5)), box[None], 24, 30)[0]
        rows = np.arange(24)[:, None] + 0.5
        cols = np.arange(30)[None, :] + 0.5
        expected = (rows > box[0]) & (rows < box[2]) & (cols > box[1]) & (cols < box[3])
        np.testing.assert_array_equal(pasted, expected.astype(np.uint8))


def test_keypoints_perfect_prediction():
    rng = np.random.default_rng(1)
    points = np.stack([rng.uniform(20, 60, 17), rng.uniform(30, 70, 17)], axis=-1)  # [y, x]
    points[3] = 0  # a missing keypoint
    gt = _groundtruths([(5, 100, 100, [((20, 30, 60, 70), 1, 0)])], max_instances=1)
    gt["keypoints"] = points[None, None].astype(np.float32)
    predictions = _predictions([(5, [((20, 30, 60, 70), 1, 0.9)])], max_detections=1)
    predictions["detection_keypoints"] = points[None, None].astype(np.float32)
    evaluator = COCOEvaluator(include_keypoint=True)
    evaluator.update_state(gt, predictions)
    metrics = evaluator.result()
    assert metrics["keypoint_AP"] == pytest.approx(1.0)
    assert metrics["keypoint_AR"] == pytest.approx(1.0)
    assert metrics["AP"] == pytest.approx(1.0)


def test_converted_ground_truth_is_coco_json():
    gt = _groundtruths([(12, 50, 60, [((5, 6, 25, 36), 4, 1)])])
    gt["source_id"] = np.array([b"12"], dtype=object)
    dataset = coco_utils.convert_groundtruths_to_coco_dataset(gt)
    assert json.loads(json.dumps(dataset)) == {
        "images": [{"id": 12, "height": 50, "width": 60}],
        "annotations": [
            {
                "image_id": 12,
                "category_id": 4,
                "iscrowd": 1,
                "bbox": [6.0, 5.0, 30.0, 20.0],
                "area": 600.0,
                "id": 1,
            }
        ],
        "categories": [{"id": 4, "name": "4"}],
    }


def test_generate_annotation_file_round_trips(tmp_path, random_case):
    gt_images, pred_images, _ = random_case
    path = tmp_path / "generated.json"
    batches = [_groundtruths(gt_images[s : s + 3]) for s in (0, 3)]
    coco_utils.generate_annotation_file(lambda: iter(batches), str(path))
    evaluator = COCOEvaluator(annotation_file=str(path))
    evaluator.update_state(None, _predictions(pred_images, max_detections=6))
    reference = COCOEvaluator()
    for s in (0, 3):
        reference.update_state(batches[s // 3], _predictions(pred_images[s : s + 3], 6))
    assert evaluator.result() == pytest.approx(reference.result())


def test_bad_input_gets_clear_errors(tmp_path):
    gt = [(1, 100, 100, [((10, 10, 60, 60), 1, 0)])]
    evaluator = COCOEvaluator()
    predictions = _predictions([(1, [((10, 10, 60, 60), 1, 0.9)])])
    del predictions["detection_scores"]
    with pytest.raises(ValueError, match="predictions lack 'detection_scores'"):
        evaluator.update_state(_groundtruths(gt), predictions)
    with pytest.raises(ValueError, match="groundtruths are needed"):
        evaluator.update_state(None, _predictions([(1, [])]))
    with pytest.raises(ValueError, match="no predictions"):
        COCOEvaluator().result()
    with pytest.raises(ValueError, match="max_num_eval_detections"):
        COCOEvaluator(max_num_eval_detections=0)
    bad_info = _predictions([(1, [])])
    bad_info["image_info"][0, 2] = 0
    with pytest.raises(ValueError, match="scale"):
        COCOEvaluator().update_state(_groundtruths(gt), bad_info)

    path = tmp_path / "one.json"
    path.write_text(json.dumps(_coco_json(gt, categories=(1,))))
    stranger = COCOEvaluator(annotation_file=str(path))
    stranger.update_state(None, _predictions([(99, [((1, 1, 5, 5), 1, 0.5)])]))
    with pytest.raises(ValueError, match=r"image ids \[99\]"):
        stranger.result()
    twice = COCOEvaluator(annotation_file=str(path))
    twice.update_state(None, _predictions([(1, [])]))
    twice.update_state(None, _predictions([(1, [])]))
    with pytest.raises(ValueError, match="image id 1 was predicted twice"):
        twice.result()
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(ValueError, match=r"broken\.json.*not valid JSON.*line 1"):
        COCOEvaluator(annotation_file=str(broken))


def test_missing_pycocotools_says_how_to_install():
    code = (
        "import sys; sys.modules['pycocotools'] = None\n"
        "from garden_vision.evaluation import COCOEvaluator\n"
        "try:\n"
        "    COCOEvaluator()\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert 'pip install "garden-vision[coco]"' in output


def test_load_res_leaves_the_callers_results_unchanged():
    wrapper = coco_utils.COCOWrapper(
        eval_type="box",
        gt_dataset={
            "images": [{"id": 1, "height": 10, "width": 20}],
            "annotations": [
                {
                    "id": 1,
                    "image_id": 1,
                    "category_id": 2,
                    "bbox": [1, 2, 3, 4],
                    "area": 12.0,
                    "iscrowd": 0,
                }
            ],
            "categories": [{"id": 2}],
        },
    )
    results = [{"image_id": 1, "category_id": 2, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}]
    before = json.dumps(results)
    loaded = wrapper.loadRes(results)
    assert json.dumps(results) == before
    (annotation,) = loaded.dataset["annotations"]
    assert annotation["area"] == 12.0
    assert annotation["id"] == 1
    loaded.dataset["images"].append({"id": 99})
    assert len(wrapper.dataset["images"]) == 1
