"""BERT fine-tuning benchmarks of garden-nlp, side by side with tf-models-official.

One script runs on either side, in that side's own environment:

    python benchmarks/nlp_bench.py train --library garden   # or --library tfm
    python benchmarks/nlp_bench.py import --library garden

Each prints one JSON line; `benchmarks/nlp_compare.py` (run by `nox -s bench`) runs both
sides alternately and prints the table recorded in benchmarks/README.md. What is measured:

- `train`: BERT-base (uncased: 30522 word pieces, 12 layers, hidden 768, 12 heads, inner
  3072, dropout 0.1) with each library's own `BertEncoder` and `BertClassifier` (2 classes),
  fine-tuned on random token ids of sequence length 128 with each library's own optimizer
  built from the `bert/sentence_prediction` optimizer settings (AdamW, weight decay 0.01
  without LayerNorm and bias, polynomial decay from 3e-5) and sparse softmax cross-entropy,
  in the same `tf.function` step on both sides; examples/s over the timed steps after
  warm-up steps (tracing excluded).
- `import`: wall time of importing what building and training a BERT sentence classifier
  needs (`IMPORTS`: the encoder networks, the classifier models, the sentence-prediction
  task, the optimizer factory and the training driver) in a fresh interpreter, interpreter
  start-up excluded; median of `--repeats` fresh processes (`compare_lib.time_import`, the
  same measurement as `vision_bench.py import`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

VOCAB_SIZE = 30522
NUM_CLASSES = 2
OPTIMIZER = {
    "optimizer": {
        "type": "adamw",
        "adamw": {
            "weight_decay_rate": 0.01,
            "exclude_from_weight_decay": ["LayerNorm", "layer_norm", "bias"],
        },
    },
    "learning_rate": {
        "type": "polynomial",
        "polynomial": {
            "initial_learning_rate": 3e-5,
            "end_learning_rate": 0.0,
            "decay_steps": 10000,
        },
    },
    "warmup": {"type": "polynomial", "polynomial": {"warmup_steps": 10}},
}


# What building and training a BERT sentence classifier imports, the same work on each side:
# encoder networks, classifier models, task, optimizer factory, training driver.
IMPORTS = {
    "garden": (
        "garden_nlp.modeling.networks",
        "garden_nlp.modeling.models",
        "garden_nlp.tasks.sentence_prediction",
        "garden_core.optimization",
        "garden_core.train_lib",
    ),
    "tfm": (
        "official.nlp.modeling.networks",
        "official.nlp.modeling.models",
        "official.nlp.tasks.sentence_prediction",
        "official.modeling.optimization",
        "official.core.train_lib",
    ),
}


def _emit(**record) -> None:
    print(json.dumps(record), flush=True)


def _garden_model_and_optimizer():
    import keras

    from garden_core.config import OptimizationConfig
    from garden_core.optimization import build_optimizer
    from garden_nlp.modeling import models, networks

    encoder = networks.BertEncoder(vocab_size=VOCAB_SIZE, type_vocab_size=2)
    model = models.BertClassifier(
        network=encoder,
        num_classes=NUM_CLASSES,
        initializer=keras.initializers.TruncatedNormal(stddev=0.02),
    )
    optimizer = build_optimizer(OptimizationConfig.from_dict(OPTIMIZER))
    return model, optimizer


def _tfm_model_and_optimizer():
    import tf_keras
    from official.modeling import optimization
    from official.nlp.modeling import models, networks

    encoder = networks.BertEncoder(vocab_size=VOCAB_SIZE, type_vocab_size=2)
    model = models.BertClassifier(
        network=encoder,
        num_classes=NUM_CLASSES,
        initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02),
    )
    factory = optimization.OptimizerFactory(optimization.OptimizationConfig(OPTIMIZER))
    optimizer = factory.build_optimizer(factory.build_learning_rate())
    return model, optimizer


def train(library: str, batch_size: int, seq_length: int, warmup: int, steps: int) -> None:
    """Times fine-tuning steps of BERT-base; emits examples/s."""
    import numpy as np
    import tensorflow as tf

    if library == "garden":
        model, optimizer = _garden_model_and_optimizer()
    else:
        model, optimizer = _tfm_model_and_optimizer()
    rng = np.random.default_rng(0)
    mask = np.ones((batch_size, seq_length), np.int32)
    mask[: batch_size // 2, seq_length * 3 // 4 :] = 0  # Some padded examples, as in GLUE.
    features = {
        "input_word_ids": tf.constant(
            rng.integers(1000, VOCAB_SIZE, (batch_size, seq_length)).astype(np.int32) * mask
        ),
        "input_mask": tf.constant(mask),
        "input_type_ids": tf.constant(
            (np.arange(seq_length)[None, :] >= seq_length // 2).astype(np.int32) * mask
        ),
    }
    labels = tf.constant(rng.integers(0, NUM_CLASSES, (batch_size,)).astype(np.int32))

    @tf.function
    def step(features, labels):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=labels, logits=tf.cast(logits, tf.float32)
                )
            )
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss

    for _ in range(warmup):
        loss = step(features, labels)
    float(loss)
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(features, labels)
    float(loss)
    elapsed = time.perf_counter() - start
    _emit(
        library=library,
        examples_per_second=batch_size * steps / elapsed,
        step_seconds=elapsed / steps,
        parameters=int(sum(np.prod(v.shape) for v in model.trainable_variables)),
    )


def import_time(library: str, repeats: int) -> None:
    """Times importing `IMPORTS[library]` in `repeats` fresh processes; emits the median."""
    import compare_lib

    records = [compare_lib.time_import(sys.executable, IMPORTS[library]) for _ in range(repeats)]
    times = [record["seconds"] for record in records]
    _emit(
        library=library,
        modules=list(IMPORTS[library]),
        seconds=statistics.median(times),
        runs=times,
        modules_loaded=records[0]["modules_loaded"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    training = commands.add_parser("train", help="time BERT-base fine-tuning steps")
    training.add_argument("--library", choices=["garden", "tfm"], required=True)
    training.add_argument("--batch_size", type=int, default=8)
    training.add_argument("--seq_length", type=int, default=128)
    training.add_argument("--warmup", type=int, default=2)
    training.add_argument("--steps", type=int, default=5)
    importing = commands.add_parser("import", help="time importing what BERT training needs")
    importing.add_argument("--library", choices=["garden", "tfm"], required=True)
    importing.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.command == "train":
        train(args.library, args.batch_size, args.seq_length, args.warmup, args.steps)
    else:
        import_time(args.library, args.repeats)


if __name__ == "__main__":
    main()
