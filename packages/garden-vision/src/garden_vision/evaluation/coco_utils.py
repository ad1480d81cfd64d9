"""COCO-format glue for detection evaluation: Garden's tensors in, pycocotools' structures out.

Model Garden's `official.vision.evaluation.coco_utils`, rebuilt. `COCOEvaluator` gathers
predictions and ground truth batch by batch as NumPy arrays; this module turns them into what
pycocotools reads:

* `convert_predictions_to_coco_annotations`: detections (yxyx pixel boxes in the original
  image, optional instance masks relative to their boxes, optional keypoints) -> a list of COCO
  result dicts (`bbox` as [x, y, width, height], masks as RLE).
* `convert_groundtruths_to_coco_dataset`: ground truth gathered from the validation data ->
  a COCO dataset dict (`images`, `annotations`, `categories`), ready for `json.dump`.
* `COCOWrapper`: a `pycocotools.coco.COCO` built from an annotation file or from such a dict,
  whose `loadRes` takes a list of result dicts (and an empty one).
* `generate_annotation_file`: writes the ground truth of a dataset as a COCO JSON file.
* `paste_instance_masks`: mask crops predicted per box -> full-image binary masks (boxes
  [ymin, xmin, ymax, xmax]; `garden_vision.ops.mask_ops.paste_instance_masks_yxyx`).

pycocotools is the optional extra `garden-vision[coco]`. This module imports without it; using
anything that needs it raises an ImportError saying how to install it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from garden_vision.ops.mask_ops import paste_instance_masks_yxyx as paste_instance_masks

try:  # The optional extra; everything that needs it checks `_coco_api` first.
    from pycocotools import coco as _coco_api
    from pycocotools import mask as _mask_api
except ImportError:
    _coco_api = None
    _mask_api = None

PYCOCOTOOLS_MISSING = (
    'COCO evaluation needs pycocotools, which is not installed: pip install "garden-vision[coco]"'
)
"""The message of the ImportError raised when pycocotools is needed but missing."""

EVAL_TYPES: tuple[str, ...] = ("box", "mask")
"""Values of `COCOWrapper(eval_type=...)`: what the area of a loaded result measures."""


def require_pycocotools() -> None:
    """Raises an ImportError naming the extra to install when pycocotools is missing."""
    if _coco_api is None or _mask_api is None:
        raise ImportError(PYCOCOTOOLS_MISSING)


def quietly(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """Calls `function`, capturing what it prints (pycocotools prints progress); returns both."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        value = function(*args, **kwargs)
    return value, buffer.getvalue()


def to_numpy(value: Any) -> np.ndarray:
    """A tensor, array, or tuple/list of per-replica parts (joined on axis 0) as a NumPy array."""
    if isinstance(value, (tuple, list)):
        parts = [to_numpy(part) for part in value]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0,))
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def image_id_of(source_id: Any) -> int:
    """A COCO image id from a `source_id` value: an integer, or bytes/str holding one.

    Raises:
        ValueError: If the value is not an integer (COCO image ids are integers).
    """
    value = source_id.item() if isinstance(source_id, np.generic) else source_id
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        raise ValueError(f"source_id {value!r} is not an integer; COCO image ids are integers")
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"source_id {value!r} is a boolean, not an integer image id")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"source_id {value!r} is not an integer; COCO image ids are integers")


def _batches(data: Mapping[str, Any], key: str) -> list[np.ndarray]:
    """`data[key]` as a list of per-batch NumPy arrays (a lone array is one batch)."""
    value = data[key]
    if isinstance(value, list):
        return [to_numpy(batch) for batch in value]
    return [to_numpy(value)]


def yxyx_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """[..., 4] boxes [ymin, xmin, ymax, xmax] -> COCO's [x, y, width, height] (NumPy)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.stack(
        [
            boxes[..., 1],
            boxes[..., 0],
            boxes[..., 3] - boxes[..., 1],
            boxes[..., 2] - boxes[..., 0],
        ],
        axis=-1,
    )


def encode_binary_masks(binary_masks: np.ndarray) -> list[dict[str, Any]]:
    """[N, H, W] 0/1 masks -> COCO compressed RLEs with `counts` as str (JSON-ready)."""
    require_pycocotools()
    binary_masks = np.asarray(binary_masks, dtype=np.uint8)
    if binary_masks.shape[0] == 0:
        return []
    encoded = _mask_api.encode(np.asfortranarray(np.transpose(binary_masks, (1, 2, 0))))
    for rle in encoded:
        if isinstance(rle["counts"], bytes):
            rle["counts"] = rle["counts"].decode("ascii")
    return encoded


def convert_predictions_to_coco_annotations(
    predictions: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Converts gathered detections to COCO result annotations.

    Only the first `num_detections` entries of each image are converted (the rest is
    padding); without `num_detections` every entry is.

    Args:
        predictions: A dict of lists of per-batch arrays (a lone array counts as one batch):
            - `source_id`: [B] integer image ids (or bytes/str holding them).
            - `detection_boxes`: [B, K, 4] boxes [ymin, xmin, ymax, xmax] in pixels of the
              original image (`COCOEvaluator` rescales them first).
            - `detection_classes`: [B, K] category ids.
            - `detection_scores`: [B, K] scores.
            - `num_detections` (optional): [B] the number of valid entries per image.
            - `detection_masks` (optional): [B, K, mask_height, mask_width] masks relative to
              the boxes; pasted onto the original image, whose size is `image_info[:, 0]`.
            - `image_info` (needed with masks): [B, 4, 2] as the parsers record it.
            - `detection_keypoints` (optional): [B, K, num_keypoints, 2] [y, x] pixels.

    Returns:
        COCO result dicts (`image_id`, `category_id`, `bbox` [x, y, width, height], `score`,
        `id` from 1, plus `segmentation` RLE with masks and `keypoints` [x, y, 2, ...] with
        keypoints).

    Raises:
        KeyError: If a required field is missing (naming it).
        ValueError: On shapes that do not fit or a non-integer source_id.
    """
    for key in ("source_id", "detection_boxes", "detection_classes", "detection_scores"):
        if key not in predictions:
            raise KeyError(f"predictions lack {key!r}; got {sorted(predictions)}")
    with_masks = "detection_masks" in predictions
    if with_masks and "image_info" not in predictions:
        raise KeyError("predictions with detection_masks need image_info (the original size)")
    with_keypoints = "detection_keypoints" in predictions
    source_ids = _batches(predictions, "source_id")
    boxes = _batches(predictions, "detection_boxes")
    classes = _batches(predictions, "detection_classes")
    scores = _batches(predictions, "detection_scores")
    counts = _batches(predictions, "num_detections") if "num_detections" in predictions else None
    masks = _batches(predictions, "detection_masks") if with_masks else None
    infos = _batches(predictions, "image_info") if with_masks else None
    keypoints = _batches(predictions, "detection_keypoints") if with_keypoints else None

    annotations: list[dict[str, Any]] = []
    for b, batch_ids in enumerate(source_ids):
        batch_ids = batch_ids.reshape(-1)
        batch_boxes = boxes[b].astype(np.float64)
        if batch_boxes.ndim != 3 or batch_boxes.shape[0] != batch_ids.shape[0]:
            raise ValueError(
                f"detection_boxes of batch {b} should be [{batch_ids.shape[0]}, K, 4]; got "
                f"{batch_boxes.shape}"
            )
        max_detections = batch_boxes.shape[1]
        xywh = yxyx_to_xywh(batch_boxes)
        for j, source_id in enumerate(batch_ids):
            image_id = image_id_of(source_id)
            count = max_detections if counts is None else int(counts[b].reshape(-1)[j])
            count = min(max(count, 0), max_detections)
            rles = None
            if masks is not None:
                height, width = (int(round(v)) for v in infos[b][j, 0])
                pasted = paste_instance_masks(
                    masks[b][j, :count], batch_boxes[j, :count], height, width
                )
                rles = encode_binary_masks(pasted)
            for k in range(count):
                annotation = {
                    "image_id": image_id,
                    "category_id": int(classes[b][j, k]),
                    "bbox": [float(v) for v in xywh[j, k]],
                    "score": float(scores[b][j, k]),
                }
                if rles is not None:
                    annotation["segmentation"] = rles[k]
                if keypoints is not None:
                    points = np.asarray(keypoints[b][j, k], dtype=np.float64)
                    annotation["keypoints"] = [
                        value
                        for y, x in points
                        for value in (float(x), float(y), 2.0)  # 2: labelled and visible.
                    ]
                annotations.append(annotation)
    for number, annotation in enumerate(annotations, start=1):
        annotation["id"] = number
    return annotations


def _decode_groundtruth_mask(
    value: Any, height: int, width: int, where: str, box: Sequence[float] | None = None
) -> np.ndarray:
    """A ground-truth instance mask -> a 0/1 `[height, width]` mask.

    The mask is PNG bytes or an array covering the image (at least `[height, width]`), or
    a smaller array holding the mask cropped to `box` (`[ymin, xmin, ymax, xmax]` pixels),
    as the Mask R-CNN parser's evaluation ground truth has it; that crop is pasted back
    into the box.
    """
    if isinstance(value, (bytes, np.bytes_)):
        import tensorflow as tf  # Only ground-truth PNG masks need it.

        mask = tf.io.decode_png(bytes(value), channels=1).numpy()[..., 0]
    else:
        mask = np.asarray(value)
    if mask.ndim == 2 and box is not None and (mask.shape[0] < height or mask.shape[1] < width):
        return paste_instance_masks(
            mask[None].astype(np.float32), np.asarray([box], np.float32), height, width
        )[0]
    if mask.ndim != 2 or mask.shape[0] < height or mask.shape[1] < width:
        raise ValueError(
            f"groundtruth mask of {where} should be a PNG, an array of at least "
            f"[{height}, {width}], or a crop of its box; got shape {mask.shape}"
        )
    return (mask[:height, :width] > 0).astype(np.uint8)


def convert_groundtruths_to_coco_dataset(
    groundtruths: Mapping[str, Any], label_map: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """Converts ground truth gathered from the validation data to a COCO dataset dict.

    Args:
        groundtruths: A dict of lists of per-batch arrays (a lone array counts as one batch),
            as the detection parsers' eval labels hold them (`labels['groundtruths']`):
            - `source_id`: [B] integer image ids; `height`, `width`: [B] original sizes.
            - `boxes`: [B, K, 4] boxes [ymin, xmin, ymax, xmax] in pixels of the original
              image; `classes`: [B, K] category ids (padding past `num_detections`).
            - `num_detections` (optional): [B] valid instances per image; without it, the
              instances with a class id above 0 count.
            - `is_crowds` (optional): [B, K]; absent means no crowd.
            - `areas` (optional): [B, K]; absent means the mask area, or else the box area.
            - `masks` (optional): [B, K] PNG-encoded instance masks of the original image
              (or a [B, K, H, W] array at least the image size, or a [B, K, h, w] array
              smaller than the image holding each mask cropped to its box, as the Mask
              R-CNN parser gives it; such crops are pasted back into their boxes).
            - `keypoints` (optional): [B, K, num_keypoints, 2] [y, x] pixels; NaN or (0, 0)
              marks a missing keypoint.
        label_map: Category id -> name; None lists the ids found in the ground truth.

    Returns:
        `{'images': [...], 'annotations': [...], 'categories': [...]}` with annotation ids
        from 1, JSON-serializable.

    Raises:
        KeyError: If a required field is missing (naming it).
        ValueError: On a duplicate image id, a class id at or below 0 among the valid
            instances, or shapes that do not fit.
    """
    for key in ("source_id", "height", "width", "boxes", "classes"):
        if key not in groundtruths:
            raise KeyError(f"groundtruths lack {key!r}; got {sorted(groundtruths)}")
    known = ("source_id", "height", "width", "num_detections", "boxes", "classes")
    known += ("is_crowds", "areas", "masks", "keypoints")
    fields = {key: _batches(groundtruths, key) for key in known if key in groundtruths}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    seen: set[int] = set()
    for b, batch_ids in enumerate(fields["source_id"]):
        batch_ids = batch_ids.reshape(-1)
        heights = fields["height"][b].reshape(-1)
        widths = fields["width"][b].reshape(-1)
        batch_boxes = fields["boxes"][b].astype(np.float64)
        batch_classes = fields["classes"][b]
        if batch_boxes.ndim != 3 or batch_boxes.shape[:1] != batch_ids.shape:
            raise ValueError(
                f"groundtruth boxes of batch {b} should be [{batch_ids.shape[0]}, K, 4]; got "
                f"{batch_boxes.shape}"
            )
        max_instances = batch_classes.shape[1]
        for j, source_id in enumerate(batch_ids):
            image_id = image_id_of(source_id)
            if image_id in seen:
                raise ValueError(
                    f"groundtruths hold image id {image_id} twice; each image must be "
                    "evaluated once (is the validation data repeated?)"
                )
            seen.add(image_id)
            height, width = int(heights[j]), int(widths[j])
            images.append({"id": image_id, "height": height, "width": width})
            if "num_detections" in fields:
                count = int(fields["num_detections"][b].reshape(-1)[j])
                if count > max_instances:
                    logging.warning(
                        "image %d has %d ground-truth instances but only %d were kept "
                        "(max_num_instances)",
                        image_id,
                        count,
                        max_instances,
                    )
                    count = max_instances
            else:
                count = int(np.sum(batch_classes[j] > 0))
            for k in range(count):
                where = f"image {image_id} instance {k}"
                category_id = int(batch_classes[j, k])
                if category_id <= 0:
                    raise ValueError(
                        f"groundtruth class of {where} is {category_id}; valid instances "
                        "need a category id above 0 (0 is background)"
                    )
                ymin, xmin, ymax, xmax = (float(v) for v in batch_boxes[j, k])
                annotation: dict[str, Any] = {
                    "image_id": image_id,
                    "category_id": category_id,
                    "iscrowd": int(fields["is_crowds"][b][j, k]) if "is_crowds" in fields else 0,
                    "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                    "area": (xmax - xmin) * (ymax - ymin),
                }
                if "masks" in fields:
                    binary = _decode_groundtruth_mask(
                        fields["masks"][b][j, k], height, width, where, (ymin, xmin, ymax, xmax)
                    )
                    annotation["segmentation"] = encode_binary_masks(binary[None])[0]
                    annotation["area"] = float(binary.sum())
                if "areas" in fields:
                    annotation["area"] = float(fields["areas"][b][j, k])
                if "keypoints" in fields:
                    points = np.asarray(fields["keypoints"][b][j, k], dtype=np.float64)
                    flat: list[float] = []
                    visible = 0
                    for y, x in points:
                        missing = bool(np.isnan(x) or np.isnan(y) or (x == 0 and y == 0))
                        flat.extend([0.0, 0.0, 0] if missing else [float(x), float(y), 2])
                        visible += 0 if missing else 1
                    annotation["keypoints"] = flat
                    annotation["num_keypoints"] = visible
                annotations.append(annotation)
    for number, annotation in enumerate(annotations, start=1):
        annotation["id"] = number
    if label_map:
        categories = [{"id": int(i), "name": str(name)} for i, name in sorted(label_map.items())]
    else:
        ids = sorted({annotation["category_id"] for annotation in annotations})
        categories = [{"id": i, "name": str(i)} for i in ids]
    return {"images": images, "annotations": annotations, "categories": categories}


def _read_json(annotation_file: str) -> dict[str, Any]:
    """Reads a COCO annotation file (local or `scheme://`), with one-line errors naming it."""
    try:
        if "://" in annotation_file:
            import tensorflow as tf  # Only remote files need it.

            with tf.io.gfile.GFile(annotation_file, "r") as f:
                text = f.read()
        else:
            with open(annotation_file, encoding="utf-8") as f:
                text = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file {annotation_file!r} does not exist") from None
    except Exception as error:  # Remote file systems raise their own errors.
        raise OSError(f"cannot read annotation file {annotation_file!r}: {error}") from None
    try:
        dataset = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"annotation file {annotation_file!r} is not valid JSON: {error.msg} at line "
            f"{error.lineno} column {error.colno}"
        ) from None
    return dataset


def _check_dataset(dataset: Any, where: str) -> None:
    if not isinstance(dataset, dict):
        raise ValueError(f"{where} should hold a JSON object; got {type(dataset).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(key), list):
            raise ValueError(f"{where} should have a list {key!r} (COCO format)")


if _coco_api is not None:
    _COCOBase = _coco_api.COCO
else:  # `COCOWrapper.__init__` raises the install message before anything else.
    _COCOBase = object


class COCOWrapper(_COCOBase):
    """A `pycocotools.coco.COCO` from an annotation file or a dataset dict, quiet and strict.

    Besides what `COCO` does, it loads ground truth from a dict (as
    `convert_groundtruths_to_coco_dataset` makes it) or from a `scheme://` path, reports
    malformed files in one line, and its `loadRes` takes a list of result dicts (also an empty
    one) and sets their areas by `eval_type`.

    Args:
        eval_type: `box` (a result's area is its box area) or `mask` (its mask area).
        annotation_file: A COCO JSON annotation file.
        gt_dataset: A COCO dataset dict. Exactly one of the two is given.

    Raises:
        ImportError: If pycocotools is missing, saying how to install it.
        ValueError: On a bad `eval_type`, both or neither source, or a file that is not
            COCO JSON.
    """

    def __init__(
        self,
        eval_type: str = "box",
        annotation_file: str | None = None,
        gt_dataset: Mapping[str, Any] | None = None,
    ):
        require_pycocotools()
        if bool(annotation_file) == (gt_dataset is not None):
            raise ValueError("COCOWrapper: give exactly one of annotation_file and gt_dataset")
        if eval_type not in EVAL_TYPES:
            raise ValueError(
                f"COCOWrapper: eval_type {eval_type!r} is not one of {', '.join(EVAL_TYPES)}"
            )
        quietly(super().__init__)
        self._eval_type = eval_type
        if annotation_file:
            dataset = _read_json(annotation_file)
            _check_dataset(dataset, f"annotation file {annotation_file!r}")
        else:
            dataset = dict(gt_dataset)
            _check_dataset(dataset, "gt_dataset")
        self.dataset = dataset
        quietly(self.createIndex)

    @property
    def eval_type(self) -> str:
        """`box` or `mask`: what the area of a loaded result measures."""
        return self._eval_type

    def loadRes(  # noqa: N802  (pycocotools' name)
        self, predictions: Sequence[Mapping[str, Any]], eval_type: str | None = None
    ) -> Any:
        """Returns a `COCO` object holding `predictions` (result dicts) over this ground truth.

        Args:
            predictions: COCO result dicts (`image_id`, `category_id`, `bbox`, `score`, and
                `segmentation` for mask results); copied, not changed.
            eval_type: Overrides the wrapper's `eval_type` for this call.

        Raises:
            ValueError: If a result names an image the ground truth lacks, or a mask result
                has no `segmentation`.
        """
        eval_type = eval_type or self._eval_type
        if eval_type not in EVAL_TYPES:
            raise ValueError(f"loadRes: eval_type {eval_type!r} is not one of {EVAL_TYPES}")
        known = set(self.getImgIds())
        unknown = sorted({p["image_id"] for p in predictions} - known)
        if unknown:
            raise ValueError(
                f"predictions name {len(unknown)} images the ground truth lacks (image ids "
                f"{unknown[:5]}); are the annotation file and the evaluated data the same set?"
            )
        results = []
        for number, prediction in enumerate(predictions, start=1):
            # A new dict per result (keys are added below); the values themselves are
            # never changed, here or by COCOeval, so they need no deep copy.
            result = dict(prediction)
            x, y, width, height = (float(v) for v in result["bbox"])
            if eval_type == "box":
                result["area"] = width * height
                result["segmentation"] = [
                    [x, y, x, y + height, x + width, y + height, x + width, y]
                ]
            else:
                if "segmentation" not in result:
                    raise ValueError(
                        f"loadRes: mask evaluation needs a segmentation in every result; "
                        f"result {number} (image {result['image_id']}) has none"
                    )
                result["area"] = float(_mask_api.area(result["segmentation"]))
            result["id"] = number
            result["iscrowd"] = 0
            results.append(result)
        loaded = quietly(_coco_api.COCO)[0]
        loaded.dataset["images"] = copy.deepcopy(self.dataset["images"])
        loaded.dataset["categories"] = copy.deepcopy(self.dataset["categories"])
        loaded.dataset["annotations"] = results
        quietly(loaded.createIndex)
        return loaded


def generate_annotation_file(
    groundtruth_generator: Callable[[], Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]],
    annotation_file: str,
    label_map: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Writes the ground truth of a dataset as a COCO annotation JSON file.

    Args:
        groundtruth_generator: A callable returning (or directly) an iterable of ground-truth
            batches, dicts as `convert_groundtruths_to_coco_dataset` reads one batch of
            (tensors or arrays; e.g. `labels['groundtruths']` of an eval dataset).
        annotation_file: Where to write; written atomically (complete or not at all).
        label_map: Category id -> name for the `categories` list.

    Returns:
        The dataset dict written.
    """
    batches = groundtruth_generator() if callable(groundtruth_generator) else groundtruth_generator
    gathered: dict[str, list[np.ndarray]] = {}
    for index, batch in enumerate(batches):
        if index and index % 100 == 0:
            logging.info("generate_annotation_file: read %d batches", index)
        for key, value in batch.items():
            gathered.setdefault(key, []).append(to_numpy(value))
    if not gathered:
        raise ValueError("generate_annotation_file: the ground-truth generator yielded nothing")
    dataset = convert_groundtruths_to_coco_dataset(gathered, label_map=label_map)
    from garden_orbit.utils import atomic_write  # Imports TensorFlow: only when writing.

    atomic_write.write_text(annotation_file, json.dumps(dataset))
    logging.info("wrote %d images of ground truth to %s", len(dataset["images"]), annotation_file)
    return dataset
