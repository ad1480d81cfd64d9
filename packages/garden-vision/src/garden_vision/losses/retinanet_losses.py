"""The RetinaNet training loss, normalized as Model Garden's `RetinaNetTask.build_losses`.

With `w_cls`, `w_box` the anchor weights of the labels (`cls_weights`: 0 for anchors
ignored between the matching thresholds; `box_weights`: 1 for positive anchors) and
`n = sum(w_box) + 1` over the whole (per-replica) batch:

    cls_loss   = sum over anchors a and classes c of  w_cls[a] / n * FL(onehot(t_a)_c, x_ac)
    box_loss   = sum over anchors a of  w_box[a] / n * mean over the 4 coordinates of
                 Huber_delta(box_target - box_output)
    model_loss = cls_loss + box_loss_weight * box_loss (+ attribute losses)
    total_loss = loss_weight * (model_loss + sum(aux_losses))

where FL is the sigmoid focal loss (`FocalLoss`, alpha and gamma) on the one-hot class
targets (class 0, background, is a class of its own as in Model Garden: its logit is trained
towards 0 probability on positives too) and Huber is
`0.5 x^2` for `|x| <= delta`, else `delta * (|x| - 0.5 delta)`. The `+ 1` keeps an image
without objects finite. Attribute heads add, with the box weights:
regression heads a Huber loss with delta 1 (mean over the attribute's values), and
classification heads the focal loss on one-hot attribute targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import keras
from keras import ops

from garden_vision.losses.focal_loss import FocalLoss
from garden_vision.losses.loss_utils import multi_level_flatten

#: The labels' key of the attribute targets (the RetinaNet parser's) and the outputs' key of
#: the attribute predictions (`RetinaNetModel`'s), Model Garden's names.
ATTRIBUTE_TARGETS = "attribute_targets"
ATTRIBUTE_OUTPUTS = "attribute_outputs"

_ATTRIBUTE_TYPES = ("regression", "classification")


def _field(item: Any, name: str) -> Any:
    """A field of an attribute-head config or of its dict form."""
    return item[name] if isinstance(item, Mapping) else getattr(item, name)


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise ValueError(f"RetinaNet losses: `{where}` has no {key!r} (it has {sorted(mapping)})")
    return mapping[key]


def attribute_losses(
    attribute_heads: Iterable[Any],
    outputs: Mapping[str, Any],
    labels: Mapping[str, Any],
    box_sample_weight: Any,
    focal_loss_alpha: float = 0.25,
    focal_loss_gamma: float = 1.5,
) -> Any:
    """The summed loss of the attribute heads (Model Garden's `build_attribute_loss`).

    Args:
      attribute_heads: Attribute-head configs (`configs.retinanet.AttributeHead`) or dicts
        with `name`, `type` (`regression` or `classification`) and `size`.
      outputs: The model's training outputs, with `attribute_outputs`: name -> level ->
        `[B, H, W, A * size]`.
      labels: The labels, with `attribute_targets`: name -> level -> `[B, H, W, A * size]`
        (regression) or `[B, H, W, A]` class ids (classification).
      box_sample_weight: `[B, N]` anchor weights, already divided by the positives.
      focal_loss_alpha, focal_loss_gamma: The focal loss of classification attributes.

    Raises:
      ValueError: For an attribute missing from the outputs or labels, or of another type.
    """
    total = ops.convert_to_tensor(0.0, "float32")
    heads = list(attribute_heads)
    if not heads:
        return total
    targets_by_name = _require(labels, ATTRIBUTE_TARGETS, "labels")
    outputs_by_name = _require(outputs, ATTRIBUTE_OUTPUTS, "outputs")
    for head in heads:
        name, kind, size = _field(head, "name"), _field(head, "type"), int(_field(head, "size"))
        targets = _require(targets_by_name, name, f"labels[{ATTRIBUTE_TARGETS!r}]")
        predictions = _require(outputs_by_name, name, f"outputs[{ATTRIBUTE_OUTPUTS!r}]")
        if kind == "regression":
            loss_fn = keras.losses.Huber(delta=1.0, reduction="sum")
            y_true = multi_level_flatten(targets, last_dim=size)
        elif kind == "classification":
            loss_fn = FocalLoss(focal_loss_alpha, focal_loss_gamma, reduction="sum")
            y_true = ops.one_hot(ops.cast(multi_level_flatten(targets), "int32"), size)
        else:
            raise ValueError(
                f"attribute head {name!r} has type {kind!r}; expected one of {_ATTRIBUTE_TYPES}"
            )
        y_pred = multi_level_flatten(predictions, last_dim=size)
        total = total + loss_fn(
            y_true, ops.cast(y_pred, "float32"), sample_weight=box_sample_weight
        )
    return total


def retinanet_losses(
    outputs: Mapping[str, Any],
    labels: Mapping[str, Any],
    *,
    num_classes: int,
    focal_loss_alpha: float = 0.25,
    focal_loss_gamma: float = 1.5,
    huber_loss_delta: float = 0.1,
    box_loss_weight: float = 50.0,
    loss_weight: float = 1.0,
    attribute_heads: Sequence[Any] | None = None,
    aux_losses: Iterable[Any] | None = None,
) -> dict[str, Any]:
    """The RetinaNet losses of one batch (see the module docstring for the formulas).

    The keyword settings are the fields of `configs.retinanet.Losses` (its `l2_weight_decay`
    becomes kernel regularization, whose penalties are `aux_losses`).

    Example:

    ```python
    outputs = model(images, training=True)
    losses = retinanet_losses(outputs, labels, num_classes=91, aux_losses=model.losses)
    loss = losses["total_loss"]
    ```

    Args:
      outputs: The model's training outputs: `cls_outputs` (level -> `[B, H, W, A *
        num_classes]` logits), `box_outputs` (level -> `[B, H, W, A * 4]`) and, with
        attribute heads, `attribute_outputs`.
      labels: The parser's labels: `cls_targets` (level -> `[B, H, W, A]` class ids),
        `box_targets` (level -> `[B, H, W, A * 4]` encoded boxes), `cls_weights` and
        `box_weights` (`[B, N]` over every anchor, levels in increasing order) and, with
        attribute heads, `attribute_targets`.
      num_classes: The number of classes, background (0) included.
      focal_loss_alpha, focal_loss_gamma: The focal loss.
      huber_loss_delta: The delta of the box regression's Huber loss.
      box_loss_weight: Multiplies the box loss in the model loss.
      loss_weight: Multiplies the total loss.
      attribute_heads: The attribute-head configs (or dicts), or None.
      aux_losses: Extra losses added before `loss_weight` (the model's regularization
        penalties, `model.losses`), or None.

    Returns:
      A dict of scalar float32 tensors under Model Garden's metric names: `total_loss`,
      `cls_loss`, `box_loss`, `model_loss`.

    Raises:
      ValueError: For a missing output or label, or outputs whose last dimensions do not
        fit `num_classes` and 4 box coordinates.
    """
    if int(num_classes) < 1:
        raise ValueError(f"retinanet_losses: `num_classes` is {num_classes!r}: must be >= 1")
    cls_outputs = _require(outputs, "cls_outputs", "outputs")
    box_outputs = _require(outputs, "box_outputs", "outputs")
    cls_weights = ops.cast(_require(labels, "cls_weights", "labels"), "float32")
    box_weights = ops.cast(_require(labels, "box_weights", "labels"), "float32")
    cls_targets = _require(labels, "cls_targets", "labels")
    box_targets = _require(labels, "box_targets", "labels")

    # Normalize by the positives of the whole batch; + 1 keeps empty images finite.
    num_positives = ops.sum(box_weights) + 1.0
    cls_sample_weight = cls_weights / num_positives
    box_sample_weight = box_weights / num_positives

    y_true_cls = ops.one_hot(ops.cast(multi_level_flatten(cls_targets), "int32"), num_classes)
    y_pred_cls = ops.cast(multi_level_flatten(cls_outputs, last_dim=num_classes), "float32")
    y_true_box = ops.cast(multi_level_flatten(box_targets, last_dim=4), "float32")
    y_pred_box = ops.cast(multi_level_flatten(box_outputs, last_dim=4), "float32")

    cls_loss_fn = FocalLoss(focal_loss_alpha, focal_loss_gamma, reduction="sum")
    box_loss_fn = keras.losses.Huber(delta=huber_loss_delta, reduction="sum")
    cls_loss = cls_loss_fn(y_true_cls, y_pred_cls, sample_weight=cls_sample_weight)
    box_loss = box_loss_fn(y_true_box, y_pred_box, sample_weight=box_sample_weight)

    model_loss = cls_loss + box_loss_weight * box_loss
    if attribute_heads:
        model_loss = model_loss + attribute_losses(
            attribute_heads,
            outputs,
            labels,
            box_sample_weight,
            focal_loss_alpha=focal_loss_alpha,
            focal_loss_gamma=focal_loss_gamma,
        )
    total_loss = model_loss
    aux = [ops.cast(loss, "float32") for loss in (aux_losses or [])]
    if aux:
        total_loss = total_loss + ops.sum(ops.stack([ops.sum(loss) for loss in aux]))
    total_loss = loss_weight * total_loss
    return {
        "total_loss": total_loss,
        "cls_loss": cls_loss,
        "box_loss": box_loss,
        "model_loss": model_loss,
    }
