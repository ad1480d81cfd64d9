"""Object-detection benchmarks of garden-vision, side by side with tf-models-official.

One script runs on either side, in that side's own environment:

    python benchmarks/detection_bench.py make-data DIR [--only train,input,coco_eval]
        [--batch_size 2] [--image_size 256]
    python benchmarks/detection_bench.py train --library garden --data DIR   # or --library tfm
    python benchmarks/detection_bench.py input --library garden --data DIR
    python benchmarks/detection_bench.py coco_eval --library garden --data DIR

Each prints one JSON line (last). `detection_compare.py` runs both sides alternately on the
same data and prints the ratio table. What is measured:

- `train`: a RetinaNet ResNet-50 FPN training step with Model Garden's
  `retinanet_resnetfpn_coco` model settings (levels 3-7, 3 scales x 3 aspect ratios,
  anchor size 4, FPN of 256 filters, a head of 4 convolutions of 256, 91 classes, L2 weight
  decay 1e-4; focal loss alpha 0.25 and gamma 1.5, Huber delta 0.1, box loss weight 50) and
  SGD with momentum 0.9 from each library's optimizer factory, in float32 on the CPU. Each
  side's model and loss come from its own `retinanet_resnetfpn_coco` experiment config
  (input size set to the batch's, the settings above checked) through its own
  `RetinaNetTask` (`build_model`, `build_losses`). Both run the same
  `tf.function` step (forward, loss with the L2 penalties, gradients, update) on the same
  batch of images and anchor targets written once by `make-data` (`train_batch.npz`);
  images/s over the timed steps after warm-up steps (tracing excluded). The record holds the
  trainable-parameter count (the driver requires both sides to agree) and the first step's
  loss (required finite; the initial weights differ, so the values are not compared).
- `input`: the RetinaNet training input pipeline of each library's own `TfExampleDecoder`
  and `retinanet_input.Parser` (random flip, scale jitter 0.8-1.2, output 512x512, anchor
  labeling, float32 images) over the same generated detection TFRecords (Model Garden's
  tf.Example layout, JPEGs of 480x640 with 1-10 boxes), parallel map, batches of 8,
  prefetch; images/s and images per CPU-second after a warm-up pass. The record holds the
  first batch's keys, shapes and dtypes (the driver requires the keys and shapes to agree
  and lists dtypes that differ: Garden's class targets are int32, Model Garden's int64).
  Then the first 16 records are parsed in evaluation mode (no random flip or jitter) and
  written to `input_check_<library>.npz` for the driver to compare the values.
- `coco_eval`: each library's `COCOEvaluator` (ground truth from `update_state`, no
  annotation file) over the same generated ground truth and predictions
  (`coco_eval.npz`), fed in batches of tensors (as evaluation steps give them); the time
  of all `update_state` calls plus `result()`. The record holds the metrics (the driver
  requires them to agree to 1e-6).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np

# Model Garden's `retinanet_resnetfpn_coco` model settings.
NUM_CLASSES = 91
MIN_LEVEL, MAX_LEVEL = 3, 7
NUM_SCALES = 3
ASPECT_RATIOS = (0.5, 1.0, 2.0)
ANCHOR_SIZE = 4.0
FPN_FILTERS = 256
HEAD_CONVS, HEAD_FILTERS = 4, 256
L2_WEIGHT_DECAY = 1e-4
FOCAL_LOSS_ALPHA, FOCAL_LOSS_GAMMA = 0.25, 1.5
HUBER_LOSS_DELTA = 0.1
BOX_LOSS_WEIGHT = 50.0
MOMENTUM = 0.9
LEARNING_RATE = 0.01

# The input pipeline's settings (Model Garden's COCO training parser).
INPUT_OUTPUT_SIZE = 512
INPUT_SCALE_MIN, INPUT_SCALE_MAX = 0.8, 1.2

TRAIN_FILE = "train_batch.npz"
COCO_FILE = "coco_eval.npz"
RECORD_PATTERN = "detection-*.tfrecord"
MEASUREMENTS = ("train", "input", "coco_eval")


def _emit(**record) -> None:
    print(json.dumps(record), flush=True)


def _fail(message: str) -> None:
    sys.exit(f"detection_bench.py: {message}")


# Data, written once by `make-data` with NumPy and plain TensorFlow (no library code).


def _anchors(
    image_size: int,
    min_level: int = MIN_LEVEL,
    max_level: int = MAX_LEVEL,
    num_scales: int = NUM_SCALES,
    aspect_ratios: tuple[float, ...] = ASPECT_RATIOS,
    anchor_size: float = ANCHOR_SIZE,
) -> dict[int, np.ndarray]:
    """Pixel yxyx anchors by level, `[H_l, W_l, A * 4]`, Model Garden's layout and order.

    Centres at `(i + 0.5) * stride`; for each scale (outer) and aspect ratio (inner) a box
    of height `anchor_size * stride * 2**(scale / num_scales) / sqrt(ratio)` and width
    `... * sqrt(ratio)`. The defaults are RetinaNet's settings above.
    """
    anchors = {}
    for level in range(min_level, max_level + 1):
        stride = 2**level
        cells = math.ceil(image_size / stride)
        centres = (np.arange(cells) + 0.5) * stride
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        boxes = []
        for scale in range(num_scales):
            for ratio in aspect_ratios:
                base = anchor_size * stride * 2 ** (scale / num_scales)
                half_h, half_w = base / math.sqrt(ratio) / 2, base * math.sqrt(ratio) / 2
                boxes.append(np.stack([cy - half_h, cx - half_w, cy + half_h, cx + half_w], -1))
        anchors[level] = np.concatenate(boxes, axis=-1).astype(np.float32)
    return anchors


def _iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Pairwise IoU of yxyx boxes `[N, 4]` and `[M, 4]` -> `[N, M]`."""
    top = np.maximum(boxes[:, None, 0], others[None, :, 0])
    left = np.maximum(boxes[:, None, 1], others[None, :, 1])
    bottom = np.minimum(boxes[:, None, 2], others[None, :, 2])
    right = np.minimum(boxes[:, None, 3], others[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    other_area = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area[:, None] + other_area[None, :] - inter)


def _random_boxes(rng, count: int, height: float, width: float) -> np.ndarray:
    """`count` pixel yxyx boxes inside a `height` x `width` image, 4 % to 60 % of its sides."""
    box_h = rng.uniform(0.04, 0.6, count) * height
    box_w = rng.uniform(0.04, 0.6, count) * width
    top = rng.uniform(0, 1, count) * (height - box_h)
    left = rng.uniform(0, 1, count) * (width - box_w)
    return np.stack([top, left, top + box_h, left + box_w], -1)


def _encode(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """`[dy, dx, dh, dw]` of yxyx `boxes` against their `anchors` (both `[N, 4]`, weights None)."""
    anchor_h, anchor_w = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    box_h, box_w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.stack(
        [
            (boxes[:, 0] + box_h / 2 - anchors[:, 0] - anchor_h / 2) / anchor_h,
            (boxes[:, 1] + box_w / 2 - anchors[:, 1] - anchor_w / 2) / anchor_w,
            np.log(box_h / anchor_h),
            np.log(box_w / anchor_w),
        ],
        -1,
    )


def _make_train_batch(directory: str, batch_size: int, image_size: int) -> None:
    """Images and anchor targets (IoU >= 0.5 positive, else negative, as Model Garden's).

    Each ground-truth box's best anchor is positive too, so every box has one. Targets are
    `[dy, dx, dh, dw]` encodings (box-coder weights None) of the matched boxes.
    """
    if image_size % 2**MAX_LEVEL:
        _fail(f"--image_size {image_size} must be a multiple of 2**{MAX_LEVEL}")
    rng = np.random.default_rng(0)
    anchors = _anchors(image_size)
    flat = np.concatenate([anchors[level].reshape(-1, 4) for level in anchors])
    arrays = {"images": rng.normal(size=(batch_size, image_size, image_size, 3)).astype(np.float32)}
    cls_targets, box_targets, box_weights = [], [], []
    for _ in range(batch_size):
        count = int(rng.integers(1, 11))
        boxes = _random_boxes(rng, count, image_size, image_size)
        classes = rng.integers(1, NUM_CLASSES, count)
        iou = _iou(flat, boxes)
        matched = iou.argmax(axis=1)
        positive = iou.max(axis=1) >= 0.5
        positive[iou.argmax(axis=0)] = True
        matched[iou.argmax(axis=0)] = np.arange(count)
        encoded = _encode(boxes[matched], flat)
        cls_targets.append(np.where(positive, classes[matched], 0).astype(np.int32))
        box_targets.append(np.where(positive[:, None], encoded, 0.0).astype(np.float32))
        box_weights.append(positive.astype(np.float32))
    cls_targets, box_targets = np.stack(cls_targets), np.stack(box_targets)
    arrays["cls_weights"] = np.ones(cls_targets.shape, np.float32)
    arrays["box_weights"] = np.stack(box_weights)
    size = float(image_size)
    info = [[size, size], [size, size], [1.0, 1.0], [0.0, 0.0]]
    arrays["image_info"] = np.tile(np.asarray(info, np.float32), (batch_size, 1, 1))
    start = 0
    for level, boxes in anchors.items():
        h, w, a4 = boxes.shape
        stop = start + h * w * a4 // 4
        arrays[f"cls_targets/{level}"] = cls_targets[:, start:stop].reshape(batch_size, h, w, -1)
        arrays[f"box_targets/{level}"] = box_targets[:, start:stop].reshape(batch_size, h, w, a4)
        arrays[f"anchor_boxes/{level}"] = np.tile(boxes[None], (batch_size, 1, 1, 1))
        start = stop
    np.savez(os.path.join(directory, TRAIN_FILE), **arrays)


def _make_records(directory: str, num_records: int, num_files: int = 4) -> None:
    """Model Garden's detection tf.Examples: 480x640 JPEGs with 1-10 normalized boxes."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    height, width = 480, 640
    writers = [
        tf.io.TFRecordWriter(os.path.join(directory, f"detection-{i:05d}.tfrecord"))
        for i in range(num_files)
    ]
    y, x = np.mgrid[0:height, 0:width] / width

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    def data(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    for index in range(num_records):
        # Smooth colour fields plus noise: compresses like a photograph, not like noise.
        phase = rng.uniform(0, 6.3, size=3)
        image = 127 + 100 * np.sin(6 * x[..., None] + 4 * y[..., None] + phase)
        image += rng.normal(0, 12, size=image.shape)
        encoded = tf.io.encode_jpeg(np.clip(image, 0, 255).astype(np.uint8), quality=90)
        count = int(rng.integers(1, 11))
        boxes = _random_boxes(rng, count, 1.0, 1.0)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) * height * width
        feature = {
            "image/encoded": data(encoded.numpy()),
            "image/format": data(b"jpeg"),
            "image/source_id": data(str(index + 1).encode()),
            "image/height": ints([height]),
            "image/width": ints([width]),
            "image/object/bbox/ymin": floats(boxes[:, 0]),
            "image/object/bbox/xmin": floats(boxes[:, 1]),
            "image/object/bbox/ymax": floats(boxes[:, 2]),
            "image/object/bbox/xmax": floats(boxes[:, 3]),
            "image/object/class/label": ints(rng.integers(1, NUM_CLASSES, count)),
            "image/object/is_crowd": ints([0] * count),
            "image/object/area": floats(areas),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        writers[index % num_files].write(example.SerializeToString())
    for writer in writers:
        writer.close()


def _make_coco_data(
    directory: str, num_images: int, max_instances: int = 100, max_detections: int = 100
) -> None:
    """Ground truth and predictions as the parsers and detection generators give them.

    Ground truth: 1-20 boxes an image (about 5 % crowds), in original-image pixels, padded
    with -1 to `max_instances`. Predictions: `max_detections` boxes an image in the model's
    input pixels (the image scaled so its long side is 640, `image_info`): jittered copies
    of the ground truth (some with another class) and random false positives, with scores.
    """
    rng = np.random.default_rng(2)
    heights = rng.integers(240, 641, num_images)
    widths = rng.integers(240, 641, num_images)
    gt_boxes = np.full((num_images, max_instances, 4), -1.0, np.float32)
    gt_classes = np.full((num_images, max_instances), -1, np.int32)
    gt_areas = np.full((num_images, max_instances), -1.0, np.float32)
    gt_crowds = np.zeros((num_images, max_instances), np.int32)
    gt_count = rng.integers(1, 21, num_images).astype(np.int32)
    boxes_out = np.zeros((num_images, max_detections, 4), np.float32)
    classes_out = np.zeros((num_images, max_detections), np.int32)
    scores_out = np.zeros((num_images, max_detections), np.float32)
    image_info = np.zeros((num_images, 4, 2), np.float32)
    for i in range(num_images):
        height, width, count = float(heights[i]), float(widths[i]), int(gt_count[i])
        boxes = _random_boxes(rng, count, height, width)
        classes = rng.integers(1, NUM_CLASSES, count)
        gt_boxes[i, :count] = boxes
        gt_classes[i, :count] = classes
        gt_areas[i, :count] = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        gt_crowds[i, :count] = rng.uniform(size=count) < 0.05
        # Detections in original pixels: 3 jittered copies of each box, then false positives.
        copies = np.repeat(boxes, 3, axis=0)[:max_detections]
        sides = np.repeat(
            np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], -1), 3, 0
        )[: len(copies)]
        copies += rng.normal(0, 0.08, copies.shape) * np.tile(sides, 2)
        copy_classes = np.repeat(classes, 3)[: len(copies)]
        relabel = rng.uniform(size=len(copy_classes)) < 0.1
        copy_classes[relabel] = rng.integers(1, NUM_CLASSES, int(relabel.sum()))
        extra = max_detections - len(copies)
        detections = np.concatenate([copies, _random_boxes(rng, extra, height, width)])
        detections[:, 0::2] = np.clip(detections[:, 0::2], 0, height)
        detections[:, 1::2] = np.clip(detections[:, 1::2], 0, width)
        scores = np.concatenate([rng.uniform(0.3, 1.0, len(copies)), rng.uniform(0.05, 0.6, extra)])
        order = np.argsort(-scores, kind="stable")
        scale = 640.0 / max(height, width)
        boxes_out[i] = detections[order] * scale
        scores_out[i] = scores[order]
        classes_out[i] = np.concatenate([copy_classes, rng.integers(1, NUM_CLASSES, extra)])[order]
        image_info[i] = [
            [height, width],
            [round(height * scale), round(width * scale)],
            [scale, scale],
            [0.0, 0.0],
        ]
    np.savez(
        os.path.join(directory, COCO_FILE),
        source_id=np.arange(1, num_images + 1, dtype=np.int64),
        height=heights.astype(np.int32),
        width=widths.astype(np.int32),
        num_groundtruths=gt_count,
        boxes=gt_boxes,
        classes=gt_classes,
        areas=gt_areas,
        is_crowds=gt_crowds,
        image_info=image_info,
        detection_boxes=boxes_out,
        detection_scores=scores_out,
        detection_classes=classes_out,
        num_detections=np.full(num_images, max_detections, np.int32),
    )


def make_data(
    directory: str,
    only: set[str],
    batch_size: int,
    image_size: int,
    num_records: int,
    num_coco_images: int,
) -> None:
    """Writes the data of the measurements in `only` into `directory` (see the helpers)."""
    os.makedirs(directory, exist_ok=True)
    if "train" in only:
        _make_train_batch(directory, batch_size, image_size)
    if "input" in only:
        _make_records(directory, num_records)
    if "coco_eval" in only:
        _make_coco_data(directory, num_coco_images)
    _emit(what="make-data", directory=directory, measurements=sorted(only))


# Models, losses and optimizers of each library.


def _check_settings(task_config, side: str) -> None:
    """Exits unless `retinanet_resnetfpn_coco`'s task config has the settings named above."""
    expected = {
        "model.num_classes": NUM_CLASSES,
        "model.min_level": MIN_LEVEL,
        "model.max_level": MAX_LEVEL,
        "model.anchor.num_scales": NUM_SCALES,
        "model.anchor.aspect_ratios": list(ASPECT_RATIOS),
        "model.anchor.anchor_size": ANCHOR_SIZE,
        "model.backbone.type": "resnet",
        "model.backbone.resnet.model_id": 50,
        "model.decoder.type": "fpn",
        "model.decoder.fpn.num_filters": FPN_FILTERS,
        "model.head.num_convs": HEAD_CONVS,
        "model.head.num_filters": HEAD_FILTERS,
        "model.norm_activation.use_sync_bn": False,
        "losses.focal_loss_alpha": FOCAL_LOSS_ALPHA,
        "losses.focal_loss_gamma": FOCAL_LOSS_GAMMA,
        "losses.huber_loss_delta": HUBER_LOSS_DELTA,
        "losses.box_loss_weight": BOX_LOSS_WEIGHT,
        "losses.loss_weight": 1.0,
        "losses.l2_weight_decay": L2_WEIGHT_DECAY,
    }
    for dotted, value in expected.items():
        actual = task_config
        for part in dotted.split("."):
            actual = getattr(actual, part)
        if isinstance(actual, (list, tuple)):
            actual = list(actual)
        if actual != value:
            _fail(
                f"{side}'s retinanet_resnetfpn_coco has task.{dotted} = {actual!r}, not {value!r}"
            )


def _optimization_settings() -> dict:
    return {
        "optimizer": {"type": "sgd", "sgd": {"momentum": MOMENTUM}},
        "learning_rate": {"type": "constant", "constant": {"learning_rate": LEARNING_RATE}},
    }


def optimizer(library: str, model):
    """The side's SGD with momentum (`_optimization_settings`) from its own optimizer factory."""
    settings = _optimization_settings()
    if library == "garden":
        from garden_core import optimization
        from garden_core.config.optimization import OptimizationConfig

        built = optimization.build_optimizer(OptimizationConfig.from_dict(settings))
        built.build(model.trainable_variables)
        return built
    from official.modeling import optimization

    factory = optimization.OptimizerFactory(optimization.OptimizationConfig(settings))
    return factory.build_optimizer(factory.build_learning_rate())


def _garden_training(image_size: int):
    """Garden's `retinanet_resnetfpn_coco` model and losses (its task), and its SGD."""
    from garden_vision.configs.retinanet import retinanet_resnetfpn_coco
    from garden_vision.tasks.retinanet import RetinaNetTask

    config = retinanet_resnetfpn_coco()
    config.task.model.input_size = [image_size, image_size, 3]
    _check_settings(config.task, "Garden")
    task = RetinaNetTask(config.task)
    model = task.build_model()

    def loss_fn(outputs, labels, model):
        return task.build_losses(labels, outputs, aux_losses=model.losses)

    return model, loss_fn, optimizer("garden", model)


def _tfm_training(image_size: int):
    """Model Garden's `retinanet_resnetfpn_coco` model and losses (its task), and its SGD."""
    from official.core import exp_factory
    from official.vision.configs import retinanet  # noqa: F401  (registers the experiment)
    from official.vision.tasks.retinanet import RetinaNetTask

    config = exp_factory.get_exp_config("retinanet_resnetfpn_coco")
    config.task.model.input_size = [image_size, image_size, 3]
    _check_settings(config.task, "Model Garden")
    task = RetinaNetTask(config.task)
    model = task.build_model()

    def loss_fn(outputs, labels, model):
        return task.build_losses(outputs=outputs, labels=labels, aux_losses=model.losses)[0]

    return model, loss_fn, optimizer("tfm", model)


# Measurements.


def training_step(model, images, call_kwargs: dict, loss_fn, optimizer):
    """The timed `tf.function` step: forward in training mode with `call_kwargs`, outputs
    cast to float32, `loss_fn(outputs)`, gradients and the optimizer's update; returns the loss."""
    import tensorflow as tf

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = model(images, training=True, **call_kwargs)
            outputs = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), outputs)
            loss = loss_fn(outputs)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    return step


def time_steps(step, library: str, warmup_steps: int, steps: int) -> tuple[float, float, float]:
    """Runs `step` (returns the loss) for the warm-up, then times `steps` more.

    Returns the first and last losses (both required finite) and the timed seconds.
    """
    first_loss = float(step().numpy())
    if not math.isfinite(first_loss):
        _fail(f"{library}: the first training step's loss is {first_loss}")
    for _ in range(max(warmup_steps - 1, 0)):
        step().numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    last_loss = float(loss.numpy())
    elapsed = time.perf_counter() - start
    if not math.isfinite(last_loss):
        _fail(f"{library}: the training loss became {last_loss}")
    return first_loss, last_loss, elapsed


def train(library: str, data: str, warmup_steps: int, steps: int) -> None:
    import tensorflow as tf

    arrays = np.load(os.path.join(data, TRAIN_FILE))
    images = tf.constant(arrays["images"])
    batch_size, image_size = int(images.shape[0]), int(images.shape[1])
    labels = {"cls_targets": {}, "box_targets": {}, "anchor_boxes": {}}
    for key in arrays.files:
        if "/" in key:
            name, level = key.split("/")
            labels[name][level] = tf.constant(arrays[key])
        elif key != "images":
            labels[key] = tf.constant(arrays[key])

    build = _garden_training if library == "garden" else _tfm_training
    model, loss_fn, optimizer = build(image_size)

    step = training_step(
        model,
        images,
        {"image_shape": labels["image_info"][:, 1, :], "anchor_boxes": labels["anchor_boxes"]},
        lambda outputs: loss_fn(outputs, labels, model),
        optimizer,
    )

    first_loss, last_loss, elapsed = time_steps(step, library, warmup_steps, steps)
    _emit(
        what="train",
        library=library,
        batch_size=batch_size,
        image_size=image_size,
        steps=steps,
        images_per_second=batch_size * steps / elapsed,
        parameters=int(sum(int(np.prod(v.shape)) for v in model.trainable_variables)),
        first_loss=first_loss,
        last_loss=last_loss,
    )


def _parser_settings() -> dict:
    return {
        "output_size": [INPUT_OUTPUT_SIZE, INPUT_OUTPUT_SIZE],
        "min_level": MIN_LEVEL,
        "max_level": MAX_LEVEL,
        "num_scales": NUM_SCALES,
        "aspect_ratios": list(ASPECT_RATIOS),
        "anchor_size": ANCHOR_SIZE,
        "aug_rand_hflip": True,
        "aug_scale_min": INPUT_SCALE_MIN,
        "aug_scale_max": INPUT_SCALE_MAX,
        "dtype": "float32",
    }


def _garden_input():
    from garden_vision.dataloaders import retinanet_input, tf_example_decoder

    return tf_example_decoder.TfExampleDecoder().decode, retinanet_input.Parser(
        **_parser_settings()
    )


def _tfm_input():
    from official.vision.dataloaders import retinanet_input, tf_example_decoder

    return tf_example_decoder.TfExampleDecoder().decode, retinanet_input.Parser(
        **_parser_settings()
    )


def _signature(structure, prefix: str = "") -> dict[str, tuple[list[int], str]]:
    """`path -> (shape, dtype)` of every tensor in nested dicts and tuples."""
    if isinstance(structure, dict):
        items = structure.items()
    elif isinstance(structure, (tuple, list)):
        items = enumerate(structure)
    else:
        return {prefix: (list(structure.shape), structure.dtype.name)}
    result = {}
    for key, value in items:
        result.update(_signature(value, f"{prefix}/{key}" if prefix else str(key)))
    return result


def input_pipeline(library: str, data: str, batch_size: int, epochs: int) -> None:
    import tensorflow as tf

    decode, parser = _garden_input() if library == "garden" else _tfm_input()
    parse = parser.parse_fn(is_training=True)
    files = sorted(glob.glob(os.path.join(data, RECORD_PATTERN)))
    if not files:
        _fail(f"no {RECORD_PATTERN} files in {data}: run `make-data {data} --only input` first")
    dataset = (
        tf.data.TFRecordDataset(files)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    signature = None
    for batch in dataset:  # Warm-up pass: tracing, file cache.
        if signature is None:
            signature = _signature({"images": batch[0], "labels": batch[1]})
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for images, _ in dataset:
            count += int(images.shape[0])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    _write_input_check(library, data, files, decode, parser.parse_fn(is_training=False))
    _emit(
        what="input",
        library=library,
        data=data,
        images=count,
        images_per_second=count / elapsed,
        images_per_cpu_second=count / cpu,
        shapes={path: shape for path, (shape, _) in signature.items()},
        dtypes={path: dtype for path, (_, dtype) in signature.items()},
    )


#: Evaluation-mode (deterministic) outputs the driver compares between the sides.
INPUT_CHECK_FILE = "input_check_{library}.npz"
INPUT_CHECK_RECORDS = 16
INPUT_CHECK_KEYS = (
    "image_info",
    "cls_targets",
    "box_targets",
    "anchor_boxes",
    "cls_weights",
    "box_weights",
)


def _write_input_check(library: str, data: str, files, decode, parse) -> None:
    """Writes the evaluation-mode parse of the first records (no random augmentation).

    The training pipeline's flips and scale jitter are random, so the sides' training
    batches cannot be compared; their deterministic evaluation parse (the same resize,
    padding, normalization and anchor labeling, without jitter) can.
    """
    import tensorflow as tf

    def flat(levels):
        return tf.concat([tf.reshape(levels[key], [-1]) for key in sorted(levels)], axis=0)

    def check(record):
        image, labels = parse(decode(record))
        result = {"image": image}
        for key in INPUT_CHECK_KEYS:
            value = labels[key]
            result[key] = tf.cast(flat(value) if isinstance(value, dict) else value, tf.float32)
        return result

    dataset = tf.data.TFRecordDataset(files).take(INPUT_CHECK_RECORDS).map(check)
    arrays: dict[str, list[np.ndarray]] = {}
    for result in dataset:
        for key, value in result.items():
            arrays.setdefault(key, []).append(value.numpy())
    np.savez(
        os.path.join(data, INPUT_CHECK_FILE.format(library=library)),
        **{key: np.stack(values) for key, values in arrays.items()},
    )


#: The metrics `coco_eval` reports and the driver compares (Model Garden's names).
COCO_METRICS = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "ARmax1",
    "ARmax10",
    "ARmax100",
    "ARs",
    "ARm",
    "ARl",
)


def coco_eval(library: str, data: str, batch_size: int) -> None:
    import tensorflow as tf

    arrays = np.load(os.path.join(data, COCO_FILE))
    if library == "garden":
        from garden_vision.evaluation.coco_evaluator import COCOEvaluator
    else:
        from official.vision.evaluation.coco_evaluator import COCOEvaluator
    evaluator = COCOEvaluator(annotation_file=None, include_mask=False, need_rescale_bboxes=True)
    num_images = int(arrays["source_id"].shape[0])
    batches = []
    for start in range(0, num_images, batch_size):
        part = {key: arrays[key][start : start + batch_size] for key in arrays.files}
        groundtruths = {
            "source_id": part["source_id"],
            "height": part["height"],
            "width": part["width"],
            "num_detections": part["num_groundtruths"],
            "boxes": part["boxes"],
            "classes": part["classes"],
            "areas": part["areas"],
            "is_crowds": part["is_crowds"],
        }
        predictions = {
            key: part[key]
            for key in (
                "source_id",
                "image_info",
                "detection_boxes",
                "detection_scores",
                "detection_classes",
                "num_detections",
            )
        }
        # As tensors, which is what evaluation steps hand to `update_state` on both sides.
        batches.append(tf.nest.map_structure(tf.constant, (groundtruths, predictions)))
    start = time.perf_counter()
    for groundtruths, predictions in batches:
        evaluator.update_state(groundtruths, predictions)
    metrics = evaluator.result()
    elapsed = time.perf_counter() - start
    missing = [name for name in COCO_METRICS if name not in metrics]
    if missing:
        _fail(f"{library}: COCOEvaluator.result() lacks {missing}; it has {sorted(metrics)}")
    _emit(
        what="coco_eval",
        library=library,
        images=num_images,
        seconds=elapsed,
        images_per_second=num_images / elapsed,
        metrics={name: float(metrics[name]) for name in COCO_METRICS},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("make-data")
    data.add_argument("directory")
    data.add_argument("--only", default=",".join(MEASUREMENTS))
    data.add_argument("--batch_size", type=int, default=2, help="Of the training batch.")
    data.add_argument("--image_size", type=int, default=256, help="Of the training batch.")
    data.add_argument("--records", type=int, default=256, help="TFRecords for `input`.")
    data.add_argument("--coco_images", type=int, default=400, help="Images for `coco_eval`.")
    for name in MEASUREMENTS:
        command = sub.add_parser(name)
        command.add_argument("--library", choices=["garden", "tfm"], required=True)
        command.add_argument("--data", required=True)
        if name == "train":
            command.add_argument("--warmup_steps", type=int, default=2)
            command.add_argument("--steps", type=int, default=5)
        if name == "input":
            command.add_argument("--batch_size", type=int, default=8)
            command.add_argument("--epochs", type=int, default=1)
        if name == "coco_eval":
            command.add_argument("--batch_size", type=int, default=8)
    args = parser.parse_args()
    if args.command == "make-data":
        only = set(args.only.split(","))
        if only - set(MEASUREMENTS):
            parser.error(f"--only: unknown measurements {sorted(only - set(MEASUREMENTS))}")
        make_data(
            args.directory, only, args.batch_size, args.image_size, args.records, args.coco_images
        )
    elif args.command == "train":
        train(args.library, args.data, args.warmup_steps, args.steps)
    elif args.command == "input":
        input_pipeline(args.library, args.data, args.batch_size, args.epochs)
    else:
        coco_eval(args.library, args.data, args.batch_size)


if __name__ == "__main__":
    main()
