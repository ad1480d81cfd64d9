"""Shared checks for garden-nlp encoders and models, for its tests and for research packages.

`run_model_test` puts a model (an encoder, a head or a task model) through what a user does
with it: build it and check its output shapes, rebuild it from `get_config`, save it with
`tf.train.Checkpoint` (as training does) and restore it into the rebuilt copy with the same
outputs, train it one step (every trainable variable gets a gradient and the weights
change), export a `tf.Module` serving function as a SavedModel and serve it with the same
outputs, save and reload it as a `.keras` file, and run it under mixed precision. A complete
encoder test is then a few lines:

    def test_tiny_bert(tmp_path):
        run_encoder_test(
            BertEncoder,
            {"vocab_size": 100, "hidden_size": 16, "num_layers": 2,
             "num_attention_heads": 2, "inner_dim": 32},
            make_encoder_inputs(batch_size=2, seq_length=8, vocab_size=100),
            {"sequence_output": (2, 8, 16), "pooled_output": (2, 16),
             "encoder_outputs": [(2, 8, 16)] * 2},
            tmp_path,
        )

The checks are `garden_core.testing.models`' (see there); this module adds NLP's inputs
(`make_encoder_inputs`) and its mixed-precision convention: encoder outputs in the compute
dtype, head logits in float32 (`is_head_output`). Outputs are compared flattened: dict keys,
with list items as `key_0`, `key_1`, ...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from garden_core.testing import models as model_checks
from garden_core.testing.models import (
    check_checkpoint_round_trip,
    check_config_round_trip,
    check_keras_file_round_trip,
    check_output_shapes,
    check_saved_model_round_trip,
    check_train_step,
    count_params,
    flatten_outputs,
)

__all__ = [
    "check_checkpoint_round_trip",
    "check_config_round_trip",
    "check_keras_file_round_trip",
    "check_mixed_precision",
    "check_output_shapes",
    "check_saved_model_round_trip",
    "check_train_step",
    "count_params",
    "flatten_outputs",
    "is_head_output",
    "make_encoder_inputs",
    "run_encoder_test",
    "run_model_test",
]

# What an encoder returns: these stay in the compute dtype under mixed precision.
ENCODER_OUTPUTS = ("sequence_output", "pooled_output", "encoder_outputs")


def is_head_output(key: str) -> bool:
    """Says whether flattened output `key` comes from a head rather than the encoder.

    Heads cast their logits to float32 (as Model Garden's do) so that losses and softmax are
    computed in float32 under mixed precision; encoder outputs stay in the compute dtype.
    """
    return not any(key == name or key.startswith(f"{name}_") for name in ENCODER_OUTPUTS)


def make_encoder_inputs(
    batch_size: int = 2,
    seq_length: int = 8,
    vocab_size: int = 100,
    type_vocab_size: int = 2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A random batch of encoder inputs (int32): the last example is padded to half length.

    Returns:
      `{"input_word_ids", "input_mask", "input_type_ids"}`, each `[batch_size, seq_length]`.
    """
    rng = np.random.default_rng(seed)
    word_ids = rng.integers(1, vocab_size, size=(batch_size, seq_length), dtype=np.int32)
    mask = np.ones((batch_size, seq_length), np.int32)
    type_ids = np.zeros((batch_size, seq_length), np.int32)
    type_ids[:, seq_length // 2 :] = min(1, type_vocab_size - 1)
    if batch_size > 1:
        mask[-1, max(1, seq_length // 2) :] = 0
        word_ids[-1, max(1, seq_length // 2) :] = 0
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def check_mixed_precision(
    make_model: Callable[[], keras.layers.Layer],
    input_data: Any,
    policy: str = "mixed_float16",
    float32_outputs: Collection[str] | Callable[[str], bool] = is_head_output,
) -> dict[str, np.ndarray]:
    """`garden_core.testing.models.check_mixed_precision` with NLP's output convention.

    Encoder outputs must be in the policy's compute dtype and head outputs (logits) float32
    (see `is_head_output`); every layer holding weights must take the policy.

    Returns:
      The flattened outputs (NumPy), e.g. to check their values.
    """
    return model_checks.check_mixed_precision(
        make_model, input_data, policy=policy, float32_outputs=float32_outputs
    )


def run_model_test(
    make_model: Callable[[], keras.layers.Layer],
    input_data: Any,
    expected_output_shapes: Any,
    tmp_path: str | os.PathLike,
    run_training: bool = True,
    run_saving: bool = True,
    run_mixed_precision: bool = True,
    no_gradient: Sequence[str] = (),
) -> keras.layers.Layer:
    """Runs every shared check (see the module docstring); returns the model.

    Args:
      make_model: Returns a fresh model (keep the sizes tiny); it is called again for the
        mixed-precision check.
      input_data: A batch of inputs (a dict of NumPy arrays, see `make_encoder_inputs`).
      expected_output_shapes: The output shapes, batch dimension included, structured like
        the outputs.
      tmp_path: A scratch directory for the saved files.
      run_training, run_saving, run_mixed_precision: Turn single checks off.
      no_gradient: Variable-path parts that legitimately get no gradient (see
        `check_train_step`).
    """
    return model_checks.run_model_test(
        make_model,
        input_data,
        expected_output_shapes,
        tmp_path,
        run_training=run_training,
        run_saving=run_saving,
        run_mixed_precision=run_mixed_precision,
        no_gradient=no_gradient,
        mixed_precision_policy="mixed_float16",
        float32_outputs=is_head_output,
    )


def run_encoder_test(
    encoder_class: type[keras.layers.Layer],
    init_kwargs: Mapping[str, Any],
    input_data: Any,
    expected_output_shapes: Any,
    tmp_path: str | os.PathLike,
    **flags: Any,
) -> keras.layers.Layer:
    """`run_model_test` for `encoder_class(**init_kwargs)`; `flags` as there."""
    return run_model_test(
        lambda: encoder_class(**init_kwargs),
        input_data,
        expected_output_shapes,
        tmp_path,
        **flags,
    )
