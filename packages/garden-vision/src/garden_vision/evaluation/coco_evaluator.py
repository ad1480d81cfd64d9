"""COCO detection metrics for Garden's detection tasks (Model Garden's `COCOEvaluator`).

The evaluator gathers predictions (and, without an annotation file, ground truth) batch by
batch, then runs pycocotools' `COCOeval` once over everything:

    evaluator = COCOEvaluator(annotation_file=None)
    for images, labels in eval_dataset:
        outputs = model(images, image_shape=..., anchor_boxes=..., training=False)
        predictions = {**outputs, "source_id": labels["groundtruths"]["source_id"],
                       "image_info": labels["image_info"]}
        evaluator.update_state(labels["groundtruths"], predictions)
    metrics = evaluator.result()   # {'AP': ..., 'AP50': ..., ..., 'ARl': ...}; then reset

Boxes are [ymin, xmin, ymax, xmax] pixels inside Garden. With `need_rescale_bboxes`,
predicted boxes are in the model's input image and are mapped back to the original image
with `image_info` ([[original_h, original_w], [desired_h, desired_w], [y_scale, x_scale],
[y_offset, x_offset]]): `(box + offset) / scale`, the inverse of the parsers' resize and crop
(the offset is 0 in evaluation, leaving Model Garden's division by the scale). Ground-truth
boxes are in pixels of the original image, as the parsers' `groundtruths` hold them.

Metric names are Model Garden's: `AP`, `AP50`, `AP75`, `APs`, `APm`, `APl`, `ARmax1`,
`ARmax10`, `ARmax{max_num_eval_detections}`, `ARs`, `ARm`, `ARl`; `mask_` in front of each for
masks. Keypoint metrics are `keypoint_AP`, `keypoint_AP50`, `keypoint_AP75`, `keypoint_APm`,
`keypoint_APl`, `keypoint_AR`, `keypoint_AR50`, `keypoint_AR75`, `keypoint_ARm`,
`keypoint_ARl`: what COCOeval's keypoint summary measures (Model Garden files the three
recalls at 20 detections under `ARmax1`, `ARmax10`, `ARmax100`). Per-category metrics
(`Precision mAP ByCategory/{category_id}`, ...) are computed from COCOeval's `precision`
and `recall` arrays, so they work with stock pycocotools. A metric with nothing to measure
(e.g. `APs` without small objects) is -1, as COCOeval reports it.

Needs pycocotools: `pip install "garden-vision[coco]"`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from garden_vision.evaluation import coco_utils

_BOX_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "ARmax1", "ARmax10")
_BOX_RECALLS = ("ARs", "ARm", "ARl")
# The fields kept from each batch; anything else (raw model outputs, attributes) is dropped.
_PREDICTION_FIELDS = (
    "source_id",
    "image_info",
    "num_detections",
    "detection_boxes",
    "detection_classes",
    "detection_scores",
    "detection_masks",
    "detection_keypoints",
)
_GROUNDTRUTH_FIELDS = (
    "source_id",
    "height",
    "width",
    "num_detections",
    "boxes",
    "classes",
    "is_crowds",
    "areas",
    "masks",
    "keypoints",
)
KEYPOINT_METRICS: tuple[str, ...] = (
    "keypoint_AP",
    "keypoint_AP50",
    "keypoint_AP75",
    "keypoint_APm",
    "keypoint_APl",
    "keypoint_AR",
    "keypoint_AR50",
    "keypoint_AR75",
    "keypoint_ARm",
    "keypoint_ARl",
)
"""Keypoint metric names, in the order of COCOeval's keypoint `stats`."""


def _not_bool_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _mean_valid(values: np.ndarray) -> float:
    """COCOeval's summary rule: the mean over entries above -1, or -1 if there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def per_category_metrics(coco_eval: Any, prefix: str = "") -> dict[str, float]:
    """Per-category AP and AR from an accumulated `COCOeval`'s `precision` / `recall` arrays.

    For each category id `c` of `coco_eval.params.catIds` (Model Garden's names):
    `Precision mAP ByCategory/c` (IoU 0.50:0.95), `Precision mAP ByCategory@50IoU/c`,
    `Precision mAP ByCategory@75IoU/c`, `Precision mAP ByCategory (small|medium|large)/c`,
    `Recall AR@{n} ByCategory/c` for each detection limit `n` of `params.maxDets`, and
    `Recall AR (small|medium|large) ByCategory/c` (area ranges the evaluation type has), all
    averaged as COCOeval's summary averages (entries of -1 left out; -1 if nothing is left).

    Args:
        coco_eval: A `pycocotools.cocoeval.COCOeval` after `evaluate()` and `accumulate()`.
        prefix: Put before every name with a space (`mask`, `keypoints`), or nothing.

    Returns:
        Metric name -> value.
    """
    params = coco_eval.params
    precision = np.asarray(coco_eval.eval["precision"])  # [T, R, K, A, M]
    recall = np.asarray(coco_eval.eval["recall"])  # [T, K, A, M]
    thresholds = np.asarray(params.iouThrs)
    areas = list(params.areaRngLbl)
    all_area = areas.index("all")
    last = len(params.maxDets) - 1
    lead = f"{prefix} " if prefix else ""
    metrics: dict[str, float] = {}
    for k, category_id in enumerate(params.catIds):
        values: dict[str, float] = {
            "Precision mAP ByCategory": _mean_valid(precision[:, :, k, all_area, last]),
        }
        for iou, label in ((0.5, "@50IoU"), (0.75, "@75IoU")):
            t = np.flatnonzero(np.isclose(thresholds, iou))
            if t.size:
                values[f"Precision mAP ByCategory{label}"] = _mean_valid(
                    precision[t[0], :, k, all_area, last]
                )
        for a, area in enumerate(areas):
            if area != "all":
                values[f"Precision mAP ByCategory ({area})"] = _mean_valid(
                    precision[:, :, k, a, last]
                )
        for m, limit in enumerate(params.maxDets):
            values[f"Recall AR@{limit} ByCategory"] = _mean_valid(recall[:, k, all_area, m])
        for a, area in enumerate(areas):
            if area != "all":
                values[f"Recall AR ({area}) ByCategory"] = _mean_valid(recall[:, k, a, last])
        for name, value in values.items():
            metrics[f"{lead}{name}/{category_id}"] = value
    return metrics


class COCOEvaluator:
    """COCO box (and mask, keypoint) metrics over a whole evaluation, as Model Garden's.

    Args:
        annotation_file: A COCO JSON annotation file of the evaluated images (local or
            `scheme://`). None takes the ground truth from the `groundtruths` passed to
            `update_state`.
        include_mask: Also evaluate instance masks (`mask_` metrics): predictions need
            `detection_masks` [B, K, mask_height, mask_width] relative to their boxes, and
            gathered ground truth needs `masks`.
        include_keypoint: Also evaluate keypoints (`keypoint_` metrics): predictions need
            `detection_keypoints` [B, K, num_keypoints, 2] ([y, x] pixels), gathered ground
            truth `keypoints`.
        need_rescale_bboxes: Map predicted boxes from the model's input image to the original
            image with `image_info` (predictions then need `image_info`).
        per_category_metrics: Add per-category AP and AR (see `per_category_metrics`).
        max_num_eval_detections: Detections per image COCOeval considers (its `maxDets[2]`);
            the metric `ARmax{max_num_eval_detections}` reports recall at it.
        need_rescale_keypoints: Map predicted keypoints to the original image as boxes.
        kpt_oks_sigmas: Per-keypoint OKS sigmas; None keeps COCO's 17 person keypoints.

    Raises:
        ImportError: If pycocotools is missing, saying how to install it.
        ValueError: If `max_num_eval_detections` is not a positive integer, or the
            annotation file is not COCO JSON.
    """

    def __init__(
        self,
        annotation_file: str | None = None,
        include_mask: bool = False,
        include_keypoint: bool = False,
        need_rescale_bboxes: bool = True,
        per_category_metrics: bool = False,
        max_num_eval_detections: int = 100,
        *,
        need_rescale_keypoints: bool = False,
        kpt_oks_sigmas: Sequence[float] | None = None,
    ):
        coco_utils.require_pycocotools()
        if not _not_bool_int(max_num_eval_detections) or max_num_eval_detections < 1:
            raise ValueError(
                "COCOEvaluator: max_num_eval_detections must be a positive integer; got "
                f"{max_num_eval_detections!r}"
            )
        self._annotation_file = annotation_file or None
        self._include_mask = bool(include_mask)
        self._include_keypoint = bool(include_keypoint)
        self._need_rescale_bboxes = bool(need_rescale_bboxes)
        self._need_rescale_keypoints = bool(need_rescale_keypoints)
        self._per_category_metrics = bool(per_category_metrics)
        self.max_num_eval_detections = int(max_num_eval_detections)
        self._kpt_oks_sigmas = None if kpt_oks_sigmas is None else np.asarray(kpt_oks_sigmas)
        self._coco_gt = None
        if self._annotation_file:
            self._coco_gt = coco_utils.COCOWrapper(
                eval_type="mask" if self._include_mask else "box",
                annotation_file=self._annotation_file,
            )

        box_names = [
            *_BOX_METRICS,
            f"ARmax{self.max_num_eval_detections}",
            *_BOX_RECALLS,
        ]
        self._metric_names = list(box_names)
        if self._include_mask:
            self._metric_names += [f"mask_{name}" for name in box_names]
        if self._include_keypoint:
            self._metric_names += list(KEYPOINT_METRICS)

        self._required_prediction_fields = [
            "source_id",
            "num_detections",
            "detection_classes",
            "detection_scores",
            "detection_boxes",
        ]
        if self._need_rescale_bboxes or self._need_rescale_keypoints or self._include_mask:
            self._required_prediction_fields.append("image_info")
        self._required_groundtruth_fields = ["source_id", "height", "width", "classes", "boxes"]
        if self._include_mask:
            self._required_prediction_fields.append("detection_masks")
            self._required_groundtruth_fields.append("masks")
        if self._include_keypoint:
            self._required_prediction_fields.append("detection_keypoints")
            self._required_groundtruth_fields.append("keypoints")
        self.reset_states()

    @property
    def name(self) -> str:
        """The metric's name in logs: `coco_metric`, as Model Garden's."""
        return "coco_metric"

    @property
    def metric_names(self) -> list[str]:
        """The names `result()` returns, per-category metrics aside."""
        return list(self._metric_names)

    def reset_states(self) -> None:
        """Forgets everything gathered, for a fresh evaluation."""
        self._predictions: dict[str, list[np.ndarray]] = {}
        self._groundtruths: dict[str, list[np.ndarray]] = {}

    @staticmethod
    def _as_numpy(data: Mapping[str, Any] | None, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The fields of `keys` that `data` has, as NumPy arrays; other fields are dropped."""
        if not data:
            return {}
        return {key: coco_utils.to_numpy(data[key]) for key in keys if key in data}

    @staticmethod
    def _image_info(predictions: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        info = np.asarray(predictions["image_info"], dtype=np.float64)
        batch = np.asarray(predictions["source_id"]).reshape(-1).shape[0]
        if info.shape != (batch, 4, 2):
            raise ValueError(
                f"predictions['image_info'] should be [batch, 4, 2] = [{batch}, 4, 2]; got "
                f"{info.shape}"
            )
        scale, offset = info[:, 2], info[:, 3]  # [B, 2] (y, x) each.
        if np.any(scale <= 0):
            raise ValueError(
                "predictions['image_info'][:, 2] (the resize scale) must be positive; got "
                f"{scale[np.any(scale <= 0, axis=1)][0].tolist()}"
            )
        return scale, offset

    def _rescale(self, predictions: dict[str, np.ndarray]) -> None:
        scale, offset = self._image_info(predictions)
        if self._need_rescale_bboxes:
            boxes = predictions["detection_boxes"].astype(np.float64)
            if boxes.ndim != 3 or boxes.shape[-1] != 4:
                raise ValueError(
                    f"predictions['detection_boxes'] should be [batch, K, 4]; got {boxes.shape}"
                )
            box_offset = np.tile(offset, 2)[:, None, :]  # [B, 1, 4]: y, x, y, x.
            box_scale = np.tile(scale, 2)[:, None, :]
            predictions["detection_boxes"] = (boxes + box_offset) / box_scale
        if self._need_rescale_keypoints and "detection_keypoints" in predictions:
            points = predictions["detection_keypoints"].astype(np.float64)  # [B, K, P, 2]
            point_offset, point_scale = offset[:, None, None, :], scale[:, None, None, :]
            predictions["detection_keypoints"] = (points + point_offset) / point_scale

    def update_state(
        self, groundtruths: Mapping[str, Any] | None, predictions: Mapping[str, Any]
    ) -> None:
        """Adds one batch of predictions (and ground truth, without an annotation file).

        Values may be NumPy arrays, tensors, or tuples of per-replica parts (joined).

        Args:
            groundtruths: The parsers' eval `groundtruths` of the batch: `source_id` [B],
                `height` [B], `width` [B], `num_detections` [B], `boxes` [B, K, 4] pixels of
                the original image, `classes` [B, K], and optionally `is_crowds`, `areas`,
                `masks`, `keypoints`. Ignored (may be None) with an annotation file.
            predictions: `source_id` [B], `num_detections` [B], `detection_boxes`
                [B, M, 4], `detection_classes` [B, M], `detection_scores` [B, M], and
                `image_info` [B, 4, 2] when rescaling or with masks. Other fields (raw
                model outputs) are ignored and not kept.

        Raises:
            ValueError: If a required field is missing (naming it) or `image_info` is bad.
        """
        predictions = self._as_numpy(predictions, _PREDICTION_FIELDS)
        for key in self._required_prediction_fields:
            if key not in predictions:
                raise ValueError(
                    f"COCOEvaluator.update_state: predictions lack {key!r}; got "
                    f"{sorted(predictions)}"
                )
        groundtruths = (
            {} if self._annotation_file else self._as_numpy(groundtruths, _GROUNDTRUTH_FIELDS)
        )
        if not self._annotation_file:
            if not groundtruths:
                raise ValueError(
                    "COCOEvaluator.update_state: groundtruths are needed when no "
                    "annotation_file is given"
                )
            for key in self._required_groundtruth_fields:
                if key not in groundtruths:
                    raise ValueError(
                        f"COCOEvaluator.update_state: groundtruths lack {key!r}; got "
                        f"{sorted(groundtruths)}"
                    )
        if self._need_rescale_bboxes or self._need_rescale_keypoints:
            self._rescale(predictions)
        # Stored only once the whole batch is checked: a bad batch leaves the state as it was.
        for key, value in predictions.items():
            self._predictions.setdefault(key, []).append(value)
        for key, value in groundtruths.items():
            self._groundtruths.setdefault(key, []).append(value)

    def _evaluated_image_ids(self) -> list[int]:
        image_ids: list[int] = []
        seen: set[int] = set()
        for batch in self._predictions["source_id"]:
            for source_id in batch.reshape(-1):
                image_id = coco_utils.image_id_of(source_id)
                if image_id in seen:
                    raise ValueError(
                        f"COCOEvaluator: image id {image_id} was predicted twice; each image "
                        "must be evaluated once (is the validation data repeated?)"
                    )
                seen.add(image_id)
                image_ids.append(image_id)
        return image_ids

    def _run(
        self,
        coco_gt: Any,
        results: list[dict[str, Any]],
        iou_type: str,
        image_ids: list[int],
    ) -> Any:
        from pycocotools import cocoeval

        if iou_type == "keypoints":
            coco_dt = coco_gt.loadRes(results, eval_type="box")
        else:
            coco_dt = coco_gt.loadRes(results, eval_type="mask" if iou_type == "segm" else "box")
        coco_eval = cocoeval.COCOeval(coco_gt, coco_dt, iouType=iou_type)
        coco_eval.params.imgIds = list(image_ids)
        if iou_type == "keypoints":
            if self._kpt_oks_sigmas is not None:
                coco_eval.params.kpt_oks_sigmas = self._kpt_oks_sigmas
        else:
            coco_eval.params.maxDets[2] = self.max_num_eval_detections
        coco_utils.quietly(coco_eval.evaluate)
        coco_utils.quietly(coco_eval.accumulate)
        _, summary = coco_utils.quietly(coco_eval.summarize)
        logging.info("COCO %s evaluation:\n%s", iou_type, summary)
        return coco_eval

    def evaluate(self) -> dict[str, float]:
        """Runs COCOeval over everything gathered; returns metric name -> value.

        Raises:
            ValueError: If nothing was gathered, an image was gathered twice, or predictions
                name images the ground truth lacks.
        """
        if not self._predictions:
            raise ValueError("COCOEvaluator.evaluate: no predictions; call update_state first")
        if self._annotation_file:
            coco_gt = self._coco_gt
        else:
            gt_dataset = coco_utils.convert_groundtruths_to_coco_dataset(self._groundtruths)
            coco_gt = coco_utils.COCOWrapper(
                eval_type="mask" if self._include_mask else "box", gt_dataset=gt_dataset
            )
        image_ids = self._evaluated_image_ids()
        results = coco_utils.convert_predictions_to_coco_annotations(self._predictions)

        box_eval = self._run(coco_gt, results, "bbox", image_ids)
        stats = list(box_eval.stats)
        evaluations = [("", box_eval)]
        if self._include_mask:
            mask_eval = self._run(coco_gt, results, "segm", image_ids)
            stats += list(mask_eval.stats)
            evaluations.append(("mask", mask_eval))
        if self._include_keypoint:
            keypoint_eval = self._run(coco_gt, results, "keypoints", image_ids)
            stats += list(keypoint_eval.stats)
            evaluations.append(("keypoints", keypoint_eval))

        metrics = {
            name: float(value) for name, value in zip(self._metric_names, stats, strict=True)
        }
        if self._per_category_metrics:
            for prefix, coco_eval in evaluations:
                metrics.update(per_category_metrics(coco_eval, prefix=prefix))
        return metrics

    def result(self) -> dict[str, float]:
        """`evaluate()`, then `reset_states()` for the next evaluation."""
        metrics = self.evaluate()
        self.reset_states()
        return metrics
