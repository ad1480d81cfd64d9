"""Mask R-CNN benchmarks of garden-vision, side by side with tf-models-official.

One script runs on either side, in that side's own environment:

    python benchmarks/maskrcnn_bench.py make-data DIR [--batch_size 2] [--image_size 256]
    python benchmarks/maskrcnn_bench.py maskrcnn_train --library garden --data DIR  # or tfm
    python benchmarks/maskrcnn_bench.py export --library tfm --data DIR     # Model Garden first
    python benchmarks/maskrcnn_bench.py export --library garden --data DIR  # reads its weights
    python benchmarks/maskrcnn_bench.py maskrcnn_serve --library garden --data DIR

Each prints one JSON line (last). `detection_compare.py` runs both sides alternately on the
same data and prints the ratio table. What is measured:

- `maskrcnn_train`: a Mask R-CNN ResNet-50 FPN training step of each side's own
  `maskrcnn_resnetfpn_coco` experiment (input size set to the batch's; the model and loss
  settings listed in `SETTINGS` are emitted and the driver requires both sides to agree)
  through its own `MaskRCNNTask` (`build_model`, `build_losses`) and SGD with momentum 0.9
  from its own optimizer factory, float32 on the CPU. Both run the same `tf.function` step
  (forward with the ground truth, RPN and Fast R-CNN and mask losses with the L2 penalties,
  gradients, update) on the same batch written by `make-data` with NumPy: images, up to
  10 boxes per image with classes and 112x112 elliptical masks in their boxes (Model
  Garden's `mask_crop_size`), and RPN targets (IoU >= 0.7 positive, < 0.3 negative, each
  box's best anchor positive, 256 anchors sampled with at most half positive). Images/s
  over the timed steps after warm-up steps. The record holds the trainable-parameter count
  (the driver requires both sides to agree) and the first loss (required finite; ROI
  sampling is random, so losses are not compared).
- `export` (not timed): Model Garden's side builds its model, draws its classifier's
  weights wider (N(0, 0.05); its own initializer gives every class about 1/91, below the
  0.05 score threshold, so nothing would be detected and no mask computed), writes the
  weights to `weights.npz` and a checkpoint, and exports a SavedModel with its
  `export_saved_model_lib.export_inference_graph` (image_tensor, batch 1). Garden's side
  loads those very weights into its model (`load_tfm_weights`), writes a checkpoint and
  exports with `garden export` (image_tensor).
- `maskrcnn_serve`: each side's exported SavedModel, `serving_default` on the same 480x640
  uint8 image (batch 1): images/s over timed calls after warm-up calls. The first call's
  outputs go to `serve_outputs_<library>.npz`; the driver requires both sides' detections
  (count, classes, scores, boxes, masks) to agree before it reports a ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detection_bench  # noqa: E402

NUM_CLASSES = 91
MIN_LEVEL, MAX_LEVEL = 2, 6
NUM_SCALES = 1
ASPECT_RATIOS = (0.5, 1.0, 2.0)
ANCHOR_SIZE = 8.0
MASK_CROP_SIZE = 112
MAX_INSTANCES = 100
RPN_POSITIVE, RPN_NEGATIVE = 0.7, 0.3
RPN_SAMPLES, RPN_POSITIVE_FRACTION = 256, 0.5

# Model and loss settings both sides' `maskrcnn_resnetfpn_coco` must share.
SETTINGS = (
    "model.num_classes",
    "model.min_level",
    "model.max_level",
    "model.anchor.num_scales",
    "model.anchor.aspect_ratios",
    "model.anchor.anchor_size",
    "model.include_mask",
    "model.backbone.type",
    "model.backbone.resnet.model_id",
    "model.decoder.type",
    "model.decoder.fpn.num_filters",
    "model.rpn_head.num_convs",
    "model.rpn_head.num_filters",
    "model.detection_head.num_convs",
    "model.detection_head.num_fcs",
    "model.detection_head.fc_dims",
    "model.roi_generator.pre_nms_top_k",
    "model.roi_generator.num_proposals",
    "model.roi_generator.nms_iou_threshold",
    "model.roi_generator.test_pre_nms_top_k",
    "model.roi_generator.test_num_proposals",
    "model.roi_sampler.num_sampled_rois",
    "model.roi_sampler.foreground_fraction",
    "model.roi_aligner.crop_size",
    "model.mask_head.num_convs",
    "model.mask_head.upsample_factor",
    "model.mask_sampler.num_sampled_masks",
    "model.detection_generator.max_num_detections",
    "model.detection_generator.pre_nms_score_threshold",
    "model.detection_generator.nms_iou_threshold",
    "model.norm_activation.use_sync_bn",
    "losses.rpn_huber_loss_delta",
    "losses.frcnn_huber_loss_delta",
    "losses.l2_weight_decay",
    "losses.rpn_score_weight",
    "losses.rpn_box_weight",
    "losses.frcnn_class_weight",
    "losses.frcnn_box_weight",
    "losses.mask_weight",
)

TRAIN_FILE = "maskrcnn_train_batch.npz"
SERVE_IMAGE = "serve_image.npy"
WEIGHTS_FILE = "weights.npz"
MEASUREMENTS = ("maskrcnn_train", "maskrcnn_serve")


def _fail(message: str) -> None:
    sys.exit(f"maskrcnn_bench.py: {message}")


# Data, written once by `make-data` with NumPy (no library code).


def _ellipse(size: int) -> np.ndarray:
    """A `size` x `size` 0/1 mask of the ellipse inscribed in its square."""
    centres = (np.arange(size) + 0.5) / size * 2 - 1
    return (centres[:, None] ** 2 + centres[None, :] ** 2 <= 1.0).astype(np.float32)


def _rpn_targets(rng, anchors: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score targets (1 / 0 / -1 ignored) and `[dy, dx, dh, dw]` box targets per anchor."""
    iou = detection_bench._iou(anchors, boxes)
    matched = iou.argmax(axis=1)
    best = iou.max(axis=1)
    positive = best >= RPN_POSITIVE
    positive[iou.argmax(axis=0)] = True
    matched[iou.argmax(axis=0)] = np.arange(len(boxes))
    negative = (best < RPN_NEGATIVE) & ~positive
    positives = np.flatnonzero(positive)
    positives = rng.permutation(positives)[: int(RPN_SAMPLES * RPN_POSITIVE_FRACTION)]
    negatives = rng.permutation(np.flatnonzero(negative))[: RPN_SAMPLES - len(positives)]
    scores = np.full(len(anchors), -1, np.int32)
    scores[negatives] = 0
    scores[positives] = 1
    targets = np.zeros((len(anchors), 4), np.float32)
    targets[positives] = detection_bench._encode(boxes[matched[positives]], anchors[positives])
    return scores, targets


def make_data(directory: str, batch_size: int, image_size: int) -> None:
    if image_size % 2**MAX_LEVEL:
        _fail(f"--image_size {image_size} must be a multiple of 2**{MAX_LEVEL}")
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(3)
    anchors = detection_bench._anchors(
        image_size, MIN_LEVEL, MAX_LEVEL, NUM_SCALES, ASPECT_RATIOS, ANCHOR_SIZE
    )
    flat = np.concatenate([anchors[level].reshape(-1, 4) for level in anchors])
    arrays = {"images": rng.normal(size=(batch_size, image_size, image_size, 3)).astype(np.float32)}
    gt_boxes = np.full((batch_size, MAX_INSTANCES, 4), -1.0, np.float32)
    gt_classes = np.full((batch_size, MAX_INSTANCES), -1, np.int32)
    gt_masks = np.full((batch_size, MAX_INSTANCES, MASK_CROP_SIZE, MASK_CROP_SIZE), -1, np.float32)
    scores, targets = [], []
    for index in range(batch_size):
        count = int(rng.integers(1, 11))
        boxes = detection_bench._random_boxes(rng, count, image_size, image_size)
        gt_boxes[index, :count] = boxes
        gt_classes[index, :count] = rng.integers(1, NUM_CLASSES, count)
        gt_masks[index, :count] = _ellipse(MASK_CROP_SIZE)
        score, target = _rpn_targets(rng, flat, boxes)
        scores.append(score)
        targets.append(target)
    arrays.update(gt_boxes=gt_boxes, gt_classes=gt_classes, gt_masks=gt_masks)
    size = float(image_size)
    info = [[size, size], [size, size], [1.0, 1.0], [0.0, 0.0]]
    arrays["image_info"] = np.tile(np.asarray(info, np.float32), (batch_size, 1, 1))
    scores, targets = np.stack(scores), np.stack(targets)
    start = 0
    for level, boxes in anchors.items():
        h, w, a4 = boxes.shape
        stop = start + h * w * a4 // 4
        arrays[f"rpn_score_targets/{level}"] = scores[:, start:stop].reshape(batch_size, h, w, -1)
        arrays[f"rpn_box_targets/{level}"] = targets[:, start:stop].reshape(batch_size, h, w, a4)
        arrays[f"anchor_boxes/{level}"] = np.tile(boxes[None], (batch_size, 1, 1, 1))
        start = stop
    np.savez(os.path.join(directory, TRAIN_FILE), **arrays)
    # The served image: smooth colour fields with bright rectangles, as a photograph would.
    y, x = np.mgrid[0:480, 0:640] / 640
    image = 110 + 80 * np.sin(5 * x[..., None] + 3 * y[..., None] + rng.uniform(0, 6.3, 3))
    for box in detection_bench._random_boxes(rng, 6, 480, 640).astype(int):
        image[box[0] : box[2], box[1] : box[3]] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 8, image.shape)
    np.save(os.path.join(directory, SERVE_IMAGE), np.clip(image, 0, 255).astype(np.uint8))
    with open(os.path.join(directory, "image_size"), "w") as f:
        f.write(str(image_size))
    detection_bench._emit(what="make-data", directory=directory)


# Each side's experiment.


def _image_size(data: str) -> int:
    with open(os.path.join(data, "image_size")) as f:
        return int(f.read())


def _settings(task_config) -> dict:
    values = {}
    for dotted in SETTINGS:
        value = task_config
        for part in dotted.split("."):
            value = getattr(value, part)
        values[dotted] = list(value) if isinstance(value, (list, tuple)) else value
    return values


def _experiment(library: str, image_size: int, use_sync_bn: bool | None = None):
    """`(config, task)` of the side's `maskrcnn_resnetfpn_coco` at the given input size
    (`use_sync_bn`: None keeps the experiment's `norm_activation.use_sync_bn`)."""
    if library == "garden":
        from garden_vision.configs.maskrcnn import maskrcnn_resnetfpn_coco
        from garden_vision.tasks.maskrcnn import MaskRCNNTask

        config = maskrcnn_resnetfpn_coco()
    else:
        from official.core import exp_factory
        from official.vision.configs import maskrcnn  # noqa: F401  (registers the experiment)
        from official.vision.tasks.maskrcnn import MaskRCNNTask

        config = exp_factory.get_exp_config("maskrcnn_resnetfpn_coco")
    config.task.model.input_size = [image_size, image_size, 3]
    if use_sync_bn is not None:
        config.task.model.norm_activation.use_sync_bn = use_sync_bn
    return config, MaskRCNNTask(config.task)


# Measurements.


def train(
    library: str, data: str, warmup_steps: int, steps: int, use_sync_bn: bool | None = None
) -> None:
    import tensorflow as tf

    arrays = np.load(os.path.join(data, TRAIN_FILE))
    images = tf.constant(arrays["images"])
    batch_size, image_size = int(images.shape[0]), int(images.shape[1])
    labels = {"rpn_score_targets": {}, "rpn_box_targets": {}, "anchor_boxes": {}}
    for key in arrays.files:
        if "/" in key:
            name, level = key.split("/")
            labels[name][level] = tf.constant(arrays[key])
        elif key != "images":
            labels[key] = tf.constant(arrays[key])
    config, task = _experiment(library, image_size, use_sync_bn)
    model = task.build_model()
    optimizer = detection_bench.optimizer(library, model)

    def loss_fn(outputs):
        if library == "garden":
            return task.build_losses(labels, outputs, aux_losses=model.losses)
        losses = task.build_losses(outputs=outputs, labels=labels, aux_losses=model.losses)
        return losses["total_loss"]

    call_kwargs = {
        "image_shape": labels["image_info"][:, 1, :],
        "anchor_boxes": labels["anchor_boxes"],
        **{key: labels[key] for key in ("gt_boxes", "gt_classes", "gt_masks")},
    }
    step = detection_bench.training_step(model, images, call_kwargs, loss_fn, optimizer)

    first_loss, last_loss, elapsed = detection_bench.time_steps(step, library, warmup_steps, steps)
    detection_bench._emit(
        what="maskrcnn_train",
        library=library,
        batch_size=batch_size,
        image_size=image_size,
        steps=steps,
        images_per_second=batch_size * steps / elapsed,
        parameters=int(sum(int(np.prod(v.shape)) for v in model.trainable_variables)),
        settings=_settings(config.task),
        first_loss=first_loss,
        last_loss=last_loss,
    )


def _canonical(name: str, min_level: int) -> str | None:
    """A head weight's name common to both sides (None for backbone and decoder weights).

    Model Garden: `mask_rcnn_model/detection_head/detection-conv-bn_0/gamma:0`,
    `rpn_head/rpn-conv-norm_2_0/beta:0`; Garden: `mask_rcnn_model/detection_head/
    detection_conv_norm_0/gamma`, `mask_rcnn_model/rpn_head/rpn_tower/norm_0_0/beta`.
    """
    name = name.split(":")[0].replace("mask_rcnn_model/", "").replace("-", "_")
    if not name.startswith(("rpn_head/", "detection_head/", "mask_head/")):
        return None
    name = name.replace("_bn", "_norm").replace("rpn_tower/conv_0_0", "rpn_conv_0")
    match = re.fullmatch(r"rpn_head/rpn_tower/norm_(\d+)_0/(\w+)", name)
    if match:  # Garden counts levels from 0, Model Garden names them.
        level = int(match[1]) + min_level
        name = f"rpn_head/rpn_conv_norm_{level}_0/{match[2]}"
    return name


def _keyed_weights(model, names) -> dict[str, object]:
    """Weight variables by a key both sides share: the canonical name for head weights,
    the position among the backbone's and decoder's (trainable, then non-trainable)
    weights otherwise (both sides create those in the same order)."""
    keyed = {}
    for kind, weights in (("t", model.trainable_weights), ("n", model.non_trainable_weights)):
        position = 0
        for weight in weights:
            key = _canonical(names(weight), MIN_LEVEL)
            if key is None:
                key = f"{kind}{position}"
                position += 1
            keyed[key] = weight
    return keyed


def _restore_checkpoint_and_export_garden(data: str, model, image_size: int) -> None:
    import tensorflow as tf

    from garden_core import cli

    prefix = tf.train.Checkpoint(model=model).save(os.path.join(data, "garden_ckpt", "ckpt"))
    status = cli.main(
        ["export", "--experiment", "maskrcnn_resnetfpn_coco"]
        + ["--params_override", f"task.model.input_size=[{image_size},{image_size},3]"]
        + ["--checkpoint_path", prefix, "--export_dir", os.path.join(data, "garden_export")]
        + ["--input_type", "image_tensor"]
    )
    if status != 0:
        _fail(f"garden export failed with status {status}")


def export(library: str, data: str) -> None:
    import tensorflow as tf

    image_size = _image_size(data)
    config, task = _experiment(library, image_size)
    model = task.build_model()
    if library == "tfm":
        keyed = _keyed_weights(model, lambda weight: weight.name)
        rng = np.random.default_rng(5)
        scores = keyed["detection_head/detection_scores/kernel"]
        scores.assign(rng.normal(0.0, 0.05, scores.shape).astype(np.float32))
        np.savez(os.path.join(data, WEIGHTS_FILE), **{k: v.numpy() for k, v in keyed.items()})
        prefix = tf.train.Checkpoint(model=model).save(os.path.join(data, "tfm_ckpt", "ckpt"))
        from official.vision.serving import export_saved_model_lib

        export_saved_model_lib.export_inference_graph(
            input_type="image_tensor",
            batch_size=1,
            input_image_size=[image_size, image_size],
            params=config,
            checkpoint_path=prefix,
            export_dir=os.path.join(data, "tfm_export"),
        )
    else:
        load_tfm_weights(model, os.path.join(data, WEIGHTS_FILE))
        _restore_checkpoint_and_export_garden(data, model, image_size)
    detection_bench._emit(what="export", library=library)


def load_tfm_weights(model, path: str) -> None:
    """Assigns Model Garden's weights (`export --library tfm`) to Garden's model."""
    stored = np.load(path)
    keyed = _keyed_weights(model, lambda weight: weight.path)
    missing = sorted(set(stored.files) ^ set(keyed))
    if missing:
        _fail(f"the sides' weights do not pair up: {missing[:10]}")
    for key, weight in keyed.items():
        value = stored[key]
        if tuple(value.shape) != tuple(weight.shape):
            _fail(f"weight {key}: Model Garden {value.shape}, Garden {tuple(weight.shape)}")
        weight.assign(value)


def serve(library: str, data: str, warmup_calls: int, calls: int) -> None:
    import tensorflow as tf

    directory = os.path.join(data, f"{library}_export")
    function = tf.saved_model.load(directory).signatures["serving_default"]
    image = tf.constant(np.load(os.path.join(data, SERVE_IMAGE))[np.newaxis])
    outputs = function(image)
    np.savez(
        os.path.join(data, f"serve_outputs_{library}.npz"),
        **{key: value.numpy() for key, value in outputs.items()},
    )
    for _ in range(warmup_calls):
        function(image)["num_detections"].numpy()
    start = time.perf_counter()
    for _ in range(calls):
        function(image)["num_detections"].numpy()
    elapsed = time.perf_counter() - start
    detection_bench._emit(
        what="maskrcnn_serve",
        library=library,
        calls=calls,
        images_per_second=calls / elapsed,
        num_detections=int(outputs["num_detections"][0]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("make-data")
    data.add_argument("directory")
    data.add_argument("--batch_size", type=int, default=2, help="Of the training batch.")
    data.add_argument("--image_size", type=int, default=256, help="The model's input size.")
    for name in (*MEASUREMENTS, "export"):
        command = sub.add_parser(name)
        command.add_argument("--library", choices=["garden", "tfm"], required=True)
        command.add_argument("--data", required=True)
        if name == "maskrcnn_train":
            command.add_argument("--warmup_steps", type=int, default=2)
            command.add_argument("--steps", type=int, default=5)
            command.add_argument(
                "--use_sync_bn",
                choices=["true", "false"],
                help="Overrides the experiment's norm_activation.use_sync_bn (true in both).",
            )
        if name == "maskrcnn_serve":
            command.add_argument("--warmup_calls", type=int, default=3)
            command.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    if args.command == "make-data":
        make_data(args.directory, args.batch_size, args.image_size)
    elif args.command == "maskrcnn_train":
        sync = None if args.use_sync_bn is None else args.use_sync_bn == "true"
        train(args.library, args.data, args.warmup_steps, args.steps, sync)
    elif args.command == "export":
        export(args.library, args.data)
    else:
        serve(args.library, args.data, args.warmup_calls, args.calls)


if __name__ == "__main__":
    main()
