"""Mapping BERT checkpoints of other formats onto Garden's BERT: configs and tensors.

The first stage of the BERT checkpoint converters (`tf1_bert_converter`,
`hf_bert_converter`); `bert_checkpoint_building` builds the Garden model,
`bert_checkpoint_writing` writes it and `bert_checkpoint_command` runs a converter from the
command line. This module:

* turns the source config into a `BertEncoderConfig`, refusing settings Garden's encoder
  would compute differently (an unknown activation, another LayerNorm epsilon, ...);
* copies every mapped source tensor into its Garden variable (`assign_weights`), checking
  first that none is missing and that every shape fits, with errors that name both the
  source tensor and the Garden variable;
* checks that every source tensor was used or is known to be ignorable (optimizer slots,
  `global_step`, heads that were not asked for): anything else is an error listing it.

`ConversionError` is the one error of every stage.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from garden_core.config import ConfigError
from garden_nlp.configs.encoders import BertEncoderConfig

LAYER_NORM_EPSILON = 1e-12
"""The LayerNorm epsilon of Garden's BERT layers (and of original BERT)."""

SOURCE_ACTIVATIONS: dict[str, str] = {"gelu": "gelu", "relu": "relu"}
"""Source `hidden_act` values that Garden's encoder computes the same way -> Garden's name.

`gelu` is the exact (erf) GELU in both TF1 BERT's released checkpoints and Hugging Face's
`BertModel`, as in Garden's encoder.
"""

_MAX_LISTED = 20


class ConversionError(ValueError):
    """A source config, checkpoint or output folder that cannot be converted or written.

    The message names what is wrong and where (file, tensor name, Garden variable).
    """


def listing(names: Iterable[str], limit: int = _MAX_LISTED) -> str:
    """`a, b, c` for at most `limit` names, then `... and N more`."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return f"{shown}, ... and {len(names) - limit} more" if len(names) > limit else shown


def read_json_config(path: str, what: str) -> dict[str, Any]:
    """Reads a JSON file holding a mapping.

    Args:
      path: The file.
      what: What the file is, for error messages (e.g. "BERT config").

    Raises:
      ConversionError: If the file cannot be read, is not JSON or is not a mapping.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ConversionError(f"cannot read the {what} {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConversionError(f"{path}:{e.lineno}:{e.colno}: invalid JSON in the {what}") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: the {what} must be a JSON object, got {data!r}")
    return data


def encoder_config_from_fields(config: Mapping[str, Any], path: str) -> BertEncoderConfig:
    """Builds a `BertEncoderConfig` from BERT config fields (TF1 and Hugging Face names).

    Reads `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
    `intermediate_size`, `hidden_act`, `hidden_dropout_prob`, `attention_probs_dropout_prob`,
    `max_position_embeddings`, `type_vocab_size` and `initializer_range`; other fields are
    the caller's to check.

    Args:
      config: The parsed source config.
      path: The config file, for error messages.

    Raises:
      ConversionError: For a missing field, a value of the wrong type, an activation Garden
        does not compute the same way, or a hidden size the heads do not divide.
    """

    def field(name: str, kind: type, default: Any = None) -> Any:
        if name not in config:
            if default is not None:
                return default
            raise ConversionError(f"{path}: the required field `{name}` is missing")
        value = config[name]
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise ConversionError(
                f"{path}: `{name}` must be {'a number' if kind is float else 'an integer'}, "
                f"got {value!r}"
            )
        return value

    activation = config.get("hidden_act", "gelu")
    if not isinstance(activation, str) or activation not in SOURCE_ACTIVATIONS:
        raise ConversionError(
            f"{path}: `hidden_act` = {activation!r} is not supported; Garden's BERT encoder "
            f"computes {listing(SOURCE_ACTIVATIONS)} the same way as the source"
        )
    hidden = field("hidden_size", int)
    heads = field("num_attention_heads", int)
    if heads <= 0 or hidden % heads:
        raise ConversionError(
            f"{path}: `hidden_size` = {hidden} is not a multiple of `num_attention_heads` = {heads}"
        )
    try:
        encoder_config = BertEncoderConfig(
            vocab_size=field("vocab_size", int),
            hidden_size=hidden,
            num_layers=field("num_hidden_layers", int),
            num_attention_heads=heads,
            hidden_activation=SOURCE_ACTIVATIONS[activation],
            intermediate_size=field("intermediate_size", int),
            dropout_rate=float(field("hidden_dropout_prob", float, 0.1)),
            attention_dropout_rate=float(field("attention_probs_dropout_prob", float, 0.1)),
            max_position_embeddings=field("max_position_embeddings", int),
            type_vocab_size=field("type_vocab_size", int),
            initializer_range=float(field("initializer_range", float, 0.02)),
        )
        encoder_config.validate()
    except ConfigError as e:
        raise ConversionError(f"{path}: {e}") from None
    return encoder_config


def check_layer_norm_epsilon(value: Any, path: str, name: str = "layer_norm_eps") -> None:
    """Refuses a LayerNorm epsilon other than Garden's 1e-12.

    Raises:
      ConversionError: Naming the field, its value and the supported one.
    """
    if not isinstance(value, (int, float)) or not math.isclose(
        value, LAYER_NORM_EPSILON, rel_tol=1e-6
    ):
        raise ConversionError(
            f"{path}: `{name}` = {value!r} is not supported; Garden's BERT uses LayerNorm "
            f"epsilon {LAYER_NORM_EPSILON:g}, so the converted model would compute other numbers"
        )


# Layouts of source tensors relative to their Garden variables.


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a source tensor is laid out relative to the Garden variable it fills.

    Attributes:
      transposed: The source is the transpose of the (merged) target, as in a PyTorch
        `Linear` weight `[out, in]` for a Keras kernel `[in, out]`.
      merged_heads: None, or where the target splits attention heads that the source keeps
        merged: `"out"` for a target `[..., heads, head_dim]` (query/key/value kernels and
        biases) from a source `[..., heads * head_dim]`; `"in"` for a target
        `[heads, head_dim, hidden]` (the attention output kernel) from a source
        `[heads * head_dim, hidden]`.
    """

    transposed: bool = False
    merged_heads: str | None = None

    def source_shape(self, target_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape a source tensor must have to fill a variable of `target_shape`."""
        shape = tuple(int(d) for d in target_shape)
        if self.merged_heads == "out":
            shape = (*shape[:-2], shape[-2] * shape[-1])
        elif self.merged_heads == "in":
            shape = (shape[0] * shape[1], *shape[2:])
        return shape[::-1] if self.transposed else shape

    def to_target(self, value: np.ndarray, target_shape: Sequence[int]) -> np.ndarray:
        """Rearranges a source tensor (of `source_shape(target_shape)`) into `target_shape`."""
        if self.transposed:
            value = value.T
        return np.reshape(value, tuple(int(d) for d in target_shape))


SAME = Layout()
TRANSPOSED = Layout(transposed=True)
MERGED_HEADS_OUT = Layout(merged_heads="out")
MERGED_HEADS_IN = Layout(merged_heads="in")
TRANSPOSED_MERGED_HEADS_OUT = Layout(transposed=True, merged_heads="out")
TRANSPOSED_MERGED_HEADS_IN = Layout(transposed=True, merged_heads="in")


@dataclasses.dataclass(frozen=True)
class WeightMapping:
    """One Garden variable and the source tensor that fills it.

    Attributes:
      source: The source tensor's name.
      target: The Garden (Keras) variable.
      layout: How the source is laid out relative to the variable.
    """

    source: str
    target: Any
    layout: Layout = SAME


class SourceTensors:
    """The named tensors of a source checkpoint, read on demand, remembering which were used.

    Args:
      shapes: Every tensor's name and shape.
      read: Returns the tensor of a name as a NumPy array.
      description: What the source is (e.g. "TF1 checkpoint /x/bert_model.ckpt"), for
        error messages.
    """

    def __init__(
        self,
        shapes: Mapping[str, Sequence[int]],
        read: Callable[[str], np.ndarray],
        description: str,
    ):
        self._shapes = {name: tuple(int(d) for d in shape) for name, shape in shapes.items()}
        self._read = read
        self.description = description
        self.used: set[str] = set()

    @property
    def names(self) -> list[str]:
        """Every tensor name, sorted."""
        return sorted(self._shapes)

    def __contains__(self, name: str) -> bool:
        return name in self._shapes

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]

    def read(self, name: str) -> np.ndarray:
        """Reads a tensor and marks it used."""
        if name not in self._shapes:
            raise ConversionError(f"{self.description} has no tensor `{name}`")
        self.used.add(name)
        return np.asarray(self._read(name))


def _variable_name(variable: Any) -> str:
    return getattr(variable, "path", None) or getattr(variable, "name", repr(variable))


def assign_weights(mappings: Sequence[WeightMapping], source: SourceTensors) -> None:
    """Copies source tensors into Garden variables, after checking all of them.

    Every source name must exist and every source shape must fit its variable's shape
    (through the mapping's layout) before anything is assigned.

    Args:
      mappings: The variables to fill and their source tensors.
      source: The source tensors; the ones read are marked used.

    Raises:
      ConversionError: Listing the missing source tensors, or naming each source tensor
        whose shape does not fit, with its shape, the Garden variable and its shape.
    """
    missing = [m.source for m in mappings if m.source not in source]
    if missing:
        raise ConversionError(
            f"{source.description} lacks {len(missing)} tensors the Garden BERT needs: "
            f"{listing(missing)}"
        )
    mismatched = []
    for m in mappings:
        target_shape = tuple(int(d) for d in m.target.shape)
        expected = m.layout.source_shape(target_shape)
        if source.shape(m.source) != expected:
            mismatched.append(
                f"`{m.source}` has shape {list(source.shape(m.source))} but Garden variable "
                f"`{_variable_name(m.target)}` {list(target_shape)} needs {list(expected)}"
            )
    if mismatched:
        raise ConversionError(
            f"{source.description} does not fit the config: "
            + "; ".join(mismatched[:5])
            + (f"; ... and {len(mismatched) - 5} more" if len(mismatched) > 5 else "")
        )
    for m in mappings:
        value = source.read(m.source)
        if not np.issubdtype(value.dtype, np.floating):
            raise ConversionError(
                f"{source.description}: `{m.source}` holds {value.dtype} values, not floats"
            )
        target_shape = tuple(int(d) for d in m.target.shape)
        m.target.assign(m.layout.to_target(value, target_shape).astype(m.target.dtype))


def check_all_used(
    source: SourceTensors, ignorable: Callable[[str], str | None]
) -> dict[str, list[str]]:
    """Checks that every source tensor was used or may be ignored.

    Args:
      source: The source tensors, after `assign_weights`.
      ignorable: For an unused name, why it may be ignored (e.g. "optimizer"), or None.

    Returns:
      The ignored names, by reason.

    Raises:
      ConversionError: Listing the tensors that were neither used nor ignorable.
    """
    ignored: dict[str, list[str]] = {}
    unknown = []
    for name in source.names:
        if name in source.used:
            continue
        reason = ignorable(name)
        if reason is None:
            unknown.append(name)
        else:
            ignored.setdefault(reason, []).append(name)
    if unknown:
        raise ConversionError(
            f"{source.description} holds {len(unknown)} tensors that Garden's BERT does not "
            f"use: {listing(unknown)}; is it a BERT checkpoint of this config?"
        )
    return ignored
