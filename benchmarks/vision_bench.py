"""Image-classification benchmarks of garden-vision, side by side with tf-models-official.

One script runs on either side, in that side's own environment:

    python benchmarks/vision_bench.py make-data DIR          # JPEG TFRecords for `input`
    python benchmarks/vision_bench.py train --library garden  # or --library tfm
    python benchmarks/vision_bench.py input --library garden --data DIR
    python benchmarks/vision_bench.py import --library garden
    python benchmarks/vision_bench.py size

Each prints one JSON line. `nox -s bench` runs both sides (tf-models-official in a venv of
its own) alternately on the same data and prints the table recorded in
benchmarks/README.md. What is measured:

- `train`: ResNet-50 (each library's own `ResNet` backbone and `ClassificationModel`, 1001
  classes) trained on synthetic 224x224 images, SGD with momentum and sparse softmax
  cross-entropy in the same `tf.function` step on both sides; images/s over the timed steps
  after warm-up steps (tracing excluded).
- `input`: the ImageNet training pipeline of each library's own decoder and parser (decode
  JPEG, Inception-style random crop, flip, resize to 224x224, normalize) over the same
  TFRecords, parallel map, batches of 32; images/s after a warm-up pass, and images per
  CPU-second (process CPU time of all threads), which the machine's other load hardly moves.
- `import`: wall time of importing what building and training a ResNet classifier needs
  (`IMPORTS`: the ResNet backbone, the classification model and its factory, the
  image-classification task, the optimizer factory and the training driver) in a fresh
  interpreter, interpreter start-up excluded; median of `--repeats` fresh processes
  (`compare_lib.time_import`, the same measurement as `nlp_bench.py import`).
- `size`: bytes installed in the environment beyond TensorFlow and what TensorFlow itself
  requires.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import json
import os
import re
import statistics
import sys
import time

NUM_CLASSES = 1001
IMAGE_SIZE = 224


def _emit(**record) -> None:
    print(json.dumps(record), flush=True)


# Data.


def make_data(directory: str, num_images: int = 512, num_files: int = 4) -> None:
    """Writes `num_images` JPEGs of 400x300 to 500x375 pixels as Model Garden tf.Examples."""
    import numpy as np
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    writers = [
        tf.io.TFRecordWriter(os.path.join(directory, f"train-{i:05d}-of-{num_files:05d}"))
        for i in range(num_files)
    ]
    for index in range(num_images):
        height, width = int(rng.integers(300, 376)), int(rng.integers(400, 501))
        # Smooth colour fields plus noise: compresses like a photograph, not like noise.
        y, x = np.mgrid[0:height, 0:width] / max(height, width)
        phase = rng.uniform(0, 6.3, size=3)
        image = 127 + 100 * np.sin(6 * x[..., None] + 4 * y[..., None] + phase)
        image += rng.normal(0, 12, size=image.shape)
        encoded = tf.io.encode_jpeg(np.clip(image, 0, 255).astype(np.uint8), quality=90)
        feature = {
            "image/encoded": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[encoded.numpy()])
            ),
            "image/class/label": tf.train.Feature(
                int64_list=tf.train.Int64List(value=[index % NUM_CLASSES])
            ),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        writers[index % num_files].write(example.SerializeToString())
    for writer in writers:
        writer.close()
    _emit(what="make-data", directory=directory, images=num_images)


# Models and parsers of each library.


def _garden_model():
    import keras

    from garden_vision.modeling.backbones.resnet import ResNet
    from garden_vision.modeling.classification_model import ClassificationModel

    specs = keras.layers.InputSpec(shape=[None, IMAGE_SIZE, IMAGE_SIZE, 3])
    backbone = ResNet(model_id=50, input_specs=specs)
    return ClassificationModel(backbone, num_classes=NUM_CLASSES, input_specs=specs), keras


def _tfm_model():
    import tf_keras
    from official.vision.modeling import classification_model
    from official.vision.modeling.backbones import resnet

    specs = tf_keras.layers.InputSpec(shape=[None, IMAGE_SIZE, IMAGE_SIZE, 3])
    backbone = resnet.ResNet(model_id=50, input_specs=specs)
    model = classification_model.ClassificationModel(
        backbone=backbone, num_classes=NUM_CLASSES, input_specs=specs
    )
    return model, tf_keras


def _garden_parser():
    from garden_vision.configs.image_classification import DataConfig
    from garden_vision.dataloaders.classification_input import ExampleDecoder, Parser

    params = DataConfig(is_training=True, global_batch_size=32)
    return ExampleDecoder().decode, Parser([IMAGE_SIZE, IMAGE_SIZE], NUM_CLASSES, params)


def _tfm_parser():
    from official.vision.dataloaders import classification_input

    parser = classification_input.Parser(
        output_size=[IMAGE_SIZE, IMAGE_SIZE], num_classes=NUM_CLASSES
    )
    return classification_input.Decoder().decode, parser.parse_fn(is_training=True)


# Measurements.


def train(library: str, batch_size: int, warmup_steps: int, steps: int) -> None:
    import numpy as np
    import tensorflow as tf

    model, keras_module = _garden_model() if library == "garden" else _tfm_model()
    optimizer = keras_module.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch_size, IMAGE_SIZE, IMAGE_SIZE, 3)), tf.float32)
    labels = tf.constant(rng.integers(0, NUM_CLASSES, size=batch_size), tf.int32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))
            )
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    for _ in range(warmup_steps):
        step().numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.numpy()
    elapsed = time.perf_counter() - start
    _emit(
        what="train",
        library=library,
        batch_size=batch_size,
        steps=steps,
        images_per_second=batch_size * steps / elapsed,
        parameters=int(model.count_params()),
    )


def input_pipeline(library: str, data: str, batch_size: int, epochs: int) -> None:
    import tensorflow as tf

    decode, parse = _garden_parser() if library == "garden" else _tfm_parser()
    files = sorted(glob.glob(os.path.join(data, "train-*")))
    dataset = (
        tf.data.TFRecordDataset(files)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in dataset:  # Warm-up pass: tracing, file cache.
        pass
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for images, _ in dataset:
            count += int(images.shape[0])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # CPU time (all threads) per image is what the pipeline costs; unlike wall time it
    # hardly moves when other work shares the machine.
    _emit(
        what="input",
        library=library,
        images=count,
        images_per_second=count / elapsed,
        images_per_cpu_second=count / cpu,
    )


# What building and training a ResNet image classifier imports, the same work on each side:
# backbone, model, model factory, task, optimizer factory, training driver.
IMPORTS = {
    "garden": (
        "garden_vision.modeling.backbones.resnet",
        "garden_vision.modeling.classification_model",
        "garden_vision.modeling.factory",
        "garden_vision.tasks.image_classification",
        "garden_core.optimization",
        "garden_core.train_lib",
    ),
    "tfm": (
        "official.vision.modeling.backbones.resnet",
        "official.vision.modeling.classification_model",
        "official.vision.modeling.factory",
        "official.vision.tasks.image_classification",
        "official.modeling.optimization",
        "official.core.train_lib",
    ),
}


def import_time(library: str, repeats: int) -> None:
    import compare_lib

    records = [compare_lib.time_import(sys.executable, IMPORTS[library]) for _ in range(repeats)]
    times = [record["seconds"] for record in records]
    _emit(
        what="import",
        library=library,
        modules=list(IMPORTS[library]),
        seconds=statistics.median(times),
        runs=times,
        modules_loaded=records[0]["modules_loaded"],
    )


def _requirement_names(distribution: str) -> set[str]:
    """`distribution` and everything it requires (unconditionally), by normalized name."""

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    seen: set[str] = set()
    pending = [norm(distribution)]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            pending.append(norm(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0]))
    return seen


def installed_size() -> None:
    """Bytes of installed files of every distribution outside TensorFlow's closure."""
    tensorflow = _requirement_names("tensorflow")
    total = 0
    counted = []
    for distribution in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", distribution.metadata["Name"]).lower()
        if name in tensorflow or name in ("pip", "setuptools", "wheel"):
            continue
        size = 0
        for file in distribution.files or []:
            path = file.locate()
            if os.path.isfile(path):
                size += os.path.getsize(path)
        total += size
        counted.append(name)
    _emit(what="size", bytes=total, distributions=len(counted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("make-data")
    data.add_argument("directory")
    for name in ("train", "input", "import"):
        command = sub.add_parser(name)
        command.add_argument("--library", choices=["garden", "tfm"], required=True)
        if name == "train":
            command.add_argument("--batch_size", type=int, default=16)
            command.add_argument("--warmup_steps", type=int, default=2)
            command.add_argument("--steps", type=int, default=8)
        if name == "input":
            command.add_argument("--data", required=True)
            command.add_argument("--batch_size", type=int, default=32)
            command.add_argument("--epochs", type=int, default=2)
        if name == "import":
            command.add_argument("--repeats", type=int, default=5)
    sub.add_parser("size")
    args = parser.parse_args()
    if args.command == "make-data":
        make_data(args.directory)
    elif args.command == "train":
        train(args.library, args.batch_size, args.warmup_steps, args.steps)
    elif args.command == "input":
        input_pipeline(args.library, args.data, args.batch_size, args.epochs)
    elif args.command == "import":
        import_time(args.library, args.repeats)
    else:
        installed_size()


if __name__ == "__main__":
    main()
