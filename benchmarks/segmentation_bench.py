"""Semantic segmentation benchmarks of garden-vision, side by side with tf-models-official.

One script runs on either side, in that side's own environment:

    python benchmarks/segmentation_bench.py make-data DIR [--batch_size 2] [--crop_size 256]
        [--records 128]
    python benchmarks/segmentation_bench.py seg_train --library garden --data DIR  # or tfm
    python benchmarks/segmentation_bench.py seg_input --library garden --data DIR

Each prints one JSON line (last). `segmentation_compare.py` runs both sides alternately on
the same data and prints the ratio table. What is measured:

- `seg_train`: a DeepLabV3+ training step of each side's own `seg_deeplabv3plus_pascal`
  experiment (dilated ResNet-101, output stride 16, multigrid 1-2-4, DeepLab stem, ASPP
  rates 6/12/18, level-2 fusion, 21 classes, swish, synchronized batch norm, L2 decay 1e-4;
  the input size set to the batch's crop; the settings in `SETTINGS` are emitted and the
  driver requires both sides to agree) through its own `SemanticSegmentationTask`
  (`build_model`, `build_losses`) and SGD with momentum 0.9 from its own optimizer factory,
  float32 on the CPU. Both run the same `tf.function` step (`detection_bench.training_step`:
  forward, the loss with ignore label 255 and the L2 penalties, gradients, update) on the
  same batch written by `make-data` with NumPy (images and masks of random rectangles with
  an ignored border). Images/s over the timed steps after warm-up steps; the record holds the
  trainable-parameter count (the driver requires both sides to agree) and the first loss.
- `seg_input`: the training input pipeline of each side's own segmentation `Decoder` and
  `Parser` with `seg_deeplabv3plus_pascal`'s training settings (512x512 output, random flip,
  scale jitter 0.5-2, preserved aspect ratio, float32) over the same generated TFRecords
  (Model Garden's layout: 375x500 JPEG images with PNG masks), parallel map, batches of 8,
  prefetch; images/s and images per CPU-second after a warm-up pass. The first 16 records
  parsed in evaluation mode (no randomness) go to `input_check_<library>.npz` for the driver
  to compare values.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detection_bench  # noqa: E402

NUM_CLASSES = 21
IGNORE_LABEL = 255
INPUT_OUTPUT_SIZE = 512
INPUT_SCALE_MIN, INPUT_SCALE_MAX = 0.5, 2.0
RECORD_HEIGHT, RECORD_WIDTH = 375, 500

# Model and loss settings both sides' `seg_deeplabv3plus_pascal` must share.
SETTINGS = (
    "model.num_classes",
    "model.backbone.type",
    "model.backbone.dilated_resnet.model_id",
    "model.backbone.dilated_resnet.output_stride",
    "model.backbone.dilated_resnet.multigrid",
    "model.backbone.dilated_resnet.stem_type",
    "model.backbone.dilated_resnet.last_stage_repeats",
    "model.decoder.type",
    "model.decoder.aspp.level",
    "model.decoder.aspp.dilation_rates",
    "model.decoder.aspp.num_filters",
    "model.decoder.aspp.pool_kernel_size",
    "model.decoder.aspp.spp_layer_version",
    "model.decoder.aspp.use_depthwise_convolution",
    "model.head.level",
    "model.head.num_convs",
    "model.head.num_filters",
    "model.head.feature_fusion",
    "model.head.low_level",
    "model.head.low_level_num_filters",
    "model.head.upsample_factor",
    "model.norm_activation.activation",
    "model.norm_activation.norm_momentum",
    "model.norm_activation.norm_epsilon",
    "model.norm_activation.use_sync_bn",
    "losses.label_smoothing",
    "losses.ignore_label",
    "losses.l2_weight_decay",
    "losses.top_k_percent_pixels",
    "losses.use_groundtruth_dimension",
    "train_data.aug_scale_min",
    "train_data.aug_scale_max",
    "train_data.aug_rand_hflip",
    "train_data.preserve_aspect_ratio",
    "train_data.output_size",
)

TRAIN_FILE = "segmentation_train_batch.npz"
RECORD_PATTERN = "segmentation-*.tfrecord"
INPUT_CHECK_FILE = "input_check_{library}.npz"
INPUT_CHECK_RECORDS = 16
MEASUREMENTS = ("seg_train", "seg_input")


def _fail(message: str) -> None:
    sys.exit(f"segmentation_bench.py: {message}")


# Data, written once by `make-data` with NumPy and plain TensorFlow (no library code).


def _random_mask(rng, height: int, width: int) -> np.ndarray:
    """A label map of 1-4 random class rectangles on background, with an ignored border."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 5)):
        y0, x0 = rng.integers(0, height - 8), rng.integers(0, width - 8)
        y1, x1 = rng.integers(y0 + 4, height), rng.integers(x0 + 4, width)
        mask[y0:y1, x0:x1] = rng.integers(1, NUM_CLASSES)
    mask[:2, :] = mask[-2:, :] = IGNORE_LABEL
    return mask


def make_data(directory: str, batch_size: int, crop_size: int, records: int) -> None:
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    masks = np.stack([_random_mask(rng, crop_size, crop_size) for _ in range(batch_size)])
    images = rng.normal(0.0, 1.0, (batch_size, crop_size, crop_size, 3)).astype(np.float32)
    np.savez(
        os.path.join(directory, TRAIN_FILE),
        images=images,
        masks=masks[..., None].astype(np.float32),
    )

    def feature(value: bytes | int) -> tf.train.Feature:
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    shards = 4
    writers = [
        tf.io.TFRecordWriter(os.path.join(directory, f"segmentation-{i:05d}.tfrecord"))
        for i in range(shards)
    ]
    for index in range(records):
        height, width = (
            (RECORD_HEIGHT, RECORD_WIDTH) if index % 2 else (RECORD_WIDTH, RECORD_HEIGHT)
        )
        smooth = rng.uniform(0, 255, (height // 25 + 1, width // 25 + 1, 3))
        image = np.kron(smooth, np.ones((25, 25, 1)))[:height, :width]
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        mask = _random_mask(rng, height, width)
        example = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "image/encoded": feature(tf.io.encode_jpeg(image, quality=90).numpy()),
                    "image/format": feature(b"jpeg"),
                    "image/height": feature(height),
                    "image/width": feature(width),
                    "image/segmentation/class/encoded": feature(
                        tf.io.encode_png(mask[..., None]).numpy()
                    ),
                    "image/segmentation/class/format": feature(b"png"),
                }
            )
        )
        writers[index % shards].write(example.SerializeToString())
    for writer in writers:
        writer.close()
    with open(os.path.join(directory, "crop_size"), "w") as f:
        f.write(str(crop_size))
    detection_bench._emit(what="make-data", directory=directory, records=records)


# Each side's experiment.


def _experiment(library: str, crop_size: int | None = None):
    """`(config, task)` of the side's `seg_deeplabv3plus_pascal` (input size set to the crop)."""
    if library == "garden":
        from garden_vision.configs.semantic_segmentation import seg_deeplabv3plus_pascal
        from garden_vision.tasks.semantic_segmentation import SemanticSegmentationTask

        config = seg_deeplabv3plus_pascal()
    else:
        from official.core import exp_factory
        from official.vision.configs import semantic_segmentation  # noqa: F401  (registers)
        from official.vision.tasks.semantic_segmentation import SemanticSegmentationTask

        config = exp_factory.get_exp_config("seg_deeplabv3plus_pascal")
    if crop_size is not None:
        config.task.model.input_size = [crop_size, crop_size, 3]
    return config, SemanticSegmentationTask(config.task)


def _settings(task_config) -> dict:
    values = {}
    for dotted in SETTINGS:
        value = task_config
        for part in dotted.split("."):
            value = getattr(value, part)
        values[dotted] = list(value) if isinstance(value, (list, tuple)) else value
    return values


# Measurements.


def train(library: str, data: str, warmup_steps: int, steps: int) -> None:
    import tensorflow as tf

    arrays = np.load(os.path.join(data, TRAIN_FILE))
    images = tf.constant(arrays["images"])
    batch_size, crop_size = int(images.shape[0]), int(images.shape[1])
    labels = {"masks": tf.constant(arrays["masks"])}
    config, task = _experiment(library, crop_size)
    model = task.build_model()
    optimizer = detection_bench.optimizer(library, model)

    def loss_fn(outputs):
        if library == "garden":
            return task.build_losses(labels, outputs, aux_losses=model.losses)
        return task.build_losses(labels=labels, model_outputs=outputs, aux_losses=model.losses)

    step = detection_bench.training_step(model, images, {}, loss_fn, optimizer)
    first_loss, last_loss, elapsed = detection_bench.time_steps(step, library, warmup_steps, steps)
    detection_bench._emit(
        what="seg_train",
        library=library,
        batch_size=batch_size,
        crop_size=crop_size,
        steps=steps,
        images_per_second=batch_size * steps / elapsed,
        parameters=int(sum(int(np.prod(v.shape)) for v in model.trainable_variables)),
        settings=_settings(config.task),
        first_loss=first_loss,
        last_loss=last_loss,
    )


def _input(library: str):
    """The side's `(decode, parser)` with `seg_deeplabv3plus_pascal`'s training settings."""
    config, _ = _experiment(library)
    data = config.task.train_data
    if library == "garden":
        from garden_vision.dataloaders import segmentation_input
    else:
        from official.vision.dataloaders import segmentation_input
    parser = segmentation_input.Parser(
        output_size=list(data.output_size),
        crop_size=list(data.crop_size) or None,
        ignore_label=IGNORE_LABEL,
        resize_eval_groundtruth=True,
        aug_scale_min=data.aug_scale_min,
        aug_scale_max=data.aug_scale_max,
        aug_rand_hflip=data.aug_rand_hflip,
        preserve_aspect_ratio=data.preserve_aspect_ratio,
        dtype="float32",
    )
    return segmentation_input.Decoder().decode, parser, config


def input_pipeline(library: str, data: str, batch_size: int, epochs: int) -> None:
    import tensorflow as tf

    decode, parser, config = _input(library)
    files = sorted(glob.glob(os.path.join(data, RECORD_PATTERN)))
    if not files:
        _fail(f"no {RECORD_PATTERN} files in {data}: run `make-data {data}` first")
    dataset = (
        tf.data.TFRecordDataset(files)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .map(parser.parse_fn(is_training=True), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    shapes = None
    for images, labels in dataset:  # Warm-up pass: tracing, file cache.
        if shapes is None:
            shapes = {"images": images.shape.as_list()}
            shapes.update({key: value.shape.as_list() for key, value in labels.items()})
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for images, _ in dataset:
            count += int(images.shape[0])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    _write_input_check(library, data, files, decode, parser.parse_fn(is_training=False))
    detection_bench._emit(
        what="seg_input",
        library=library,
        images=count,
        images_per_second=count / elapsed,
        images_per_cpu_second=count / cpu,
        shapes=shapes,
        settings=_settings(config.task),
    )


def _write_input_check(library: str, data: str, files, decode, parse) -> None:
    """Writes the evaluation-mode parse (deterministic) of the first records."""
    import tensorflow as tf

    def check(record):
        image, labels = parse(decode(record))
        return {
            "image": image,
            **{key: tf.cast(value, tf.float32) for key, value in labels.items()},
        }

    arrays: dict[str, list[np.ndarray]] = {}
    for result in tf.data.TFRecordDataset(files).take(INPUT_CHECK_RECORDS).map(check):
        for key, value in result.items():
            arrays.setdefault(key, []).append(value.numpy())
    np.savez(
        os.path.join(data, INPUT_CHECK_FILE.format(library=library)),
        **{key: np.stack(values) for key, values in arrays.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("make-data")
    data.add_argument("directory")
    data.add_argument("--batch_size", type=int, default=2, help="Of the training batch.")
    data.add_argument("--crop_size", type=int, default=256, help="Of the training batch.")
    data.add_argument("--records", type=int, default=128, help="TFRecords for `seg_input`.")
    for name in MEASUREMENTS:
        command = sub.add_parser(name)
        command.add_argument("--library", choices=["garden", "tfm"], required=True)
        command.add_argument("--data", required=True)
        if name == "seg_train":
            command.add_argument("--warmup_steps", type=int, default=2)
            command.add_argument("--steps", type=int, default=3)
        else:
            command.add_argument("--batch_size", type=int, default=8)
            command.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if args.command == "make-data":
        make_data(args.directory, args.batch_size, args.crop_size, args.records)
    elif args.command == "seg_train":
        train(args.library, args.data, args.warmup_steps, args.steps)
    else:
        input_pipeline(args.library, args.data, args.batch_size, args.epochs)


if __name__ == "__main__":
    main()
