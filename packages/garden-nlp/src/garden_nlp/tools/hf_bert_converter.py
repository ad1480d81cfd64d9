"""Converts Hugging Face BERT weights (safetensors) into Garden's BERT, without PyTorch.

The source is a Hugging Face model folder holding `config.json` (`model_type: bert`) and
`model.safetensors`, or a sharded `model.safetensors.index.json` with its shards, as
written by `save_pretrained` for `BertModel`, `BertForPreTraining` or `BertForMaskedLM`.
Tensors are read with the `safetensors` NumPy API (install `garden-nlp[huggingface]`);
float16 and bfloat16 weights are widened to float32.

Names are accepted with the `bert.` prefix (task models) or without it (`BertModel`), and
map onto Garden's `BertEncoder` as follows (PyTorch `Linear` weights `[out, in]` are
transposed into Keras kernels `[in, out]`):

* `embeddings.{word,position,token_type}_embeddings.weight` and `embeddings.LayerNorm`
  (`weight`/`bias`, or `gamma`/`beta` in older files): the embeddings;
* `encoder.layer.{i}.attention.self.{query,key,value}`: the attention projections, split
  into heads (`[hidden, heads, head_dim]` kernels, `[heads, head_dim]` biases);
* `encoder.layer.{i}.attention.output.dense`: the attention output (`[heads, head_dim,
  hidden]`), and `attention.output.LayerNorm`, `intermediate.dense`, `output.dense`,
  `output.LayerNorm`, `pooler.dense`.

With `--include_pretraining_heads`: `cls.predictions.transform.dense`,
`cls.predictions.transform.LayerNorm` and `cls.predictions.bias` (or its alias
`cls.predictions.decoder.bias`) fill the masked-LM head, whose output table is the word
embeddings (a `cls.predictions.decoder.weight` in the file must equal them: untied decoders
are refused); the pooler and `cls.seq_relationship` fill the `next_sentence` head.

The `embeddings.position_ids` buffer and, without the flag, the `cls.` heads are ignored;
any other tensor is an error listing it, as is a missing one.

Usage:

    garden-convert-hf-bert --model_dir=bert-base-uncased/ --output_dir=OUT \\
        [--include_pretraining_heads] [--overwrite]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from garden_nlp.configs.encoders import BertEncoderConfig
from garden_nlp.tools import bert_checkpoint_building as building
from garden_nlp.tools import bert_checkpoint_command as command
from garden_nlp.tools import bert_checkpoint_mapping as mapping
from garden_nlp.tools import bert_checkpoint_writing as writing

_PROG = "garden-convert-hf-bert"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
CONFIG_FILE = "config.json"
_BUFFERS = ("embeddings.position_ids",)
_EMBEDDINGS = "embeddings.word_embeddings.weight"


def _safetensors() -> Any:
    try:
        import safetensors
    except ImportError:
        raise mapping.ConversionError(
            "reading Hugging Face checkpoints needs the `safetensors` package: "
            "pip install 'garden-nlp[huggingface]'"
        ) from None
    return safetensors


def read_hf_config(config_file: str) -> BertEncoderConfig:
    """Reads a Hugging Face BERT `config.json` into a Garden `BertEncoderConfig`.

    Args:
      config_file: The JSON file (`model_type: bert`; `vocab_size`, `hidden_size`,
        `num_hidden_layers`, `num_attention_heads`, `intermediate_size`, `hidden_act`,
        `hidden_dropout_prob`, `attention_probs_dropout_prob`, `max_position_embeddings`,
        `type_vocab_size`, `initializer_range`, `layer_norm_eps`).

    Raises:
      ConversionError: For another model type, a LayerNorm epsilon other than 1e-12, relative
        position embeddings, a decoder config, an unsupported activation, or a missing or
        mistyped field.
    """
    config = mapping.read_json_config(config_file, "Hugging Face config")
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise mapping.ConversionError(
            f"{config_file}: `model_type` = {model_type!r} is not supported; this converter "
            "reads BERT (`model_type: bert`) checkpoints"
        )
    mapping.check_layer_norm_epsilon(config.get("layer_norm_eps", 1e-12), config_file)
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise mapping.ConversionError(
            f"{config_file}: `position_embedding_type` = {position_type!r} is not supported; "
            "Garden's BERT has absolute position embeddings"
        )
    for flag in ("is_decoder", "add_cross_attention"):
        if config.get(flag, False):
            raise mapping.ConversionError(
                f"{config_file}: `{flag}` = true is not supported; Garden's BERT is a "
                "bidirectional encoder"
            )
    return mapping.encoder_config_from_fields(config, config_file)


def _bf16_reader(path: str) -> Any:
    """Reads bfloat16 tensors of a safetensors file (NumPy has no bfloat16) as float32."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    start = 8 + length

    def read(name: str) -> np.ndarray:
        begin, end = header[name]["data_offsets"]
        with open(path, "rb") as f:
            f.seek(start + begin)
            raw = np.frombuffer(f.read(end - begin), dtype="<u2")
        widened = (raw.astype(np.uint32) << 16).view(np.float32)
        return widened.reshape(header[name]["shape"])

    return read


def read_safetensors(model_dir: str) -> mapping.SourceTensors:
    """Opens the safetensors weights of a Hugging Face model folder (single or sharded).

    Raises:
      ConversionError: If `safetensors` is not installed, the folder has no safetensors
        weights, a shard is missing or lacks a tensor its index names, or a file is corrupt.
    """
    safetensors = _safetensors()
    single = os.path.join(model_dir, SAFETENSORS_FILE)
    index = os.path.join(model_dir, SAFETENSORS_INDEX_FILE)
    if os.path.isfile(single):
        files = {single: None}
    elif os.path.isfile(index):
        weight_map = mapping.read_json_config(index, "safetensors index").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise mapping.ConversionError(f"{index}: expected a non-empty `weight_map` object")
        files = {}
        for name, shard in weight_map.items():
            files.setdefault(os.path.join(model_dir, str(shard)), set()).add(name)
    else:
        others = [
            f
            for f in ("pytorch_model.bin", "tf_model.h5")
            if os.path.exists(os.path.join(model_dir, f))
        ]
        hint = (
            f" (it has {mapping.listing(others)}; re-save the model with "
            "`save_pretrained(..., safe_serialization=True)`)"
            if others
            else ""
        )
        raise mapping.ConversionError(
            f"--model_dir {model_dir} has neither {SAFETENSORS_FILE} nor "
            f"{SAFETENSORS_INDEX_FILE}{hint}"
        )
    shapes: dict[str, list[int]] = {}
    location: dict[str, str] = {}
    bf16_files: set[str] = set()
    for path, expected in files.items():
        try:
            with safetensors.safe_open(path, framework="numpy") as f:
                names = set(f.keys())
                for name in names:
                    tensor = f.get_slice(name)
                    shapes[name] = tensor.get_shape()
                    location[name] = path
                    if tensor.get_dtype() == "BF16":
                        bf16_files.add(path)
        except FileNotFoundError:
            raise mapping.ConversionError(f"{path}, named by {index}, does not exist") from None
        except Exception as e:  # safetensors raises its own error types for bad files
            raise mapping.ConversionError(f"cannot read {path}: {e}") from None
        if expected is not None and not expected <= names:
            raise mapping.ConversionError(
                f"{path} lacks tensors {index} places there: {mapping.listing(expected - names)}"
            )
    bf16_readers = {path: _bf16_reader(path) for path in bf16_files}

    def read(name: str) -> np.ndarray:
        path = location[name]
        with safetensors.safe_open(path, framework="numpy") as f:
            if f.get_slice(name).get_dtype() == "BF16":
                return bf16_readers[path](name)
            return f.get_tensor(name)

    return mapping.SourceTensors(shapes, read, f"Hugging Face weights in {model_dir}")


def _norm_names(source: mapping.SourceTensors, scope: str) -> tuple[str, str]:
    if f"{scope}.gamma" in source and f"{scope}.weight" not in source:
        return f"{scope}.gamma", f"{scope}.beta"
    return f"{scope}.weight", f"{scope}.bias"


def _encoder_mappings(
    encoder: Any, source: mapping.SourceTensors, prefix: str
) -> list[mapping.WeightMapping]:
    m = mapping.WeightMapping

    def dense(scope: str, layer: Any) -> list[mapping.WeightMapping]:
        return [
            m(f"{scope}.weight", layer.kernel, mapping.TRANSPOSED),
            m(f"{scope}.bias", layer.bias),
        ]

    def norm(scope: str, layer: Any) -> list[mapping.WeightMapping]:
        gamma, beta = _norm_names(source, scope)
        return [m(gamma, layer.gamma), m(beta, layer.beta)]

    p = prefix
    mappings = [
        m(f"{p}embeddings.word_embeddings.weight", encoder.word_embeddings.embeddings),
        m(f"{p}embeddings.position_embeddings.weight", encoder.position_embedding.embeddings),
        m(f"{p}embeddings.token_type_embeddings.weight", encoder.type_embeddings.embeddings),
        *norm(f"{p}embeddings.LayerNorm", encoder.embedding_norm),
    ]
    for i, block in enumerate(encoder.transformer_layers):
        scope = f"{p}encoder.layer.{i}"
        attention = block.attention_layer
        for name, layer in (
            ("query", attention.query_dense),
            ("key", attention.key_dense),
            ("value", attention.value_dense),
        ):
            mappings += [
                m(
                    f"{scope}.attention.self.{name}.weight",
                    layer.kernel,
                    mapping.TRANSPOSED_MERGED_HEADS_OUT,
                ),
                m(f"{scope}.attention.self.{name}.bias", layer.bias, mapping.MERGED_HEADS_OUT),
            ]
        mappings += [
            m(
                f"{scope}.attention.output.dense.weight",
                attention.output_dense.kernel,
                mapping.TRANSPOSED_MERGED_HEADS_IN,
            ),
            m(f"{scope}.attention.output.dense.bias", attention.output_dense.bias),
            *norm(f"{scope}.attention.output.LayerNorm", block.attention_layer_norm),
            *dense(f"{scope}.intermediate.dense", block.intermediate_dense),
            *dense(f"{scope}.output.dense", block.output_dense),
            *norm(f"{scope}.output.LayerNorm", block.output_layer_norm),
        ]
    return mappings + dense(f"{p}pooler.dense", encoder.pooler_layer)


def _head_mappings(
    source: mapping.SourceTensors, prefix: str, masked_lm: Any, next_sentence: Any
) -> list[mapping.WeightMapping]:
    m = mapping.WeightMapping
    gamma, beta = _norm_names(source, "cls.predictions.transform.LayerNorm")
    bias = "cls.predictions.bias"
    if bias not in source and "cls.predictions.decoder.bias" in source:
        bias = "cls.predictions.decoder.bias"
    return [
        m("cls.predictions.transform.dense.weight", masked_lm.dense.kernel, mapping.TRANSPOSED),
        m("cls.predictions.transform.dense.bias", masked_lm.dense.bias),
        m(gamma, masked_lm.layer_norm.gamma),
        m(beta, masked_lm.layer_norm.beta),
        m(bias, masked_lm.bias),
        m(f"{prefix}pooler.dense.weight", next_sentence.dense.kernel, mapping.TRANSPOSED),
        m(f"{prefix}pooler.dense.bias", next_sentence.dense.bias),
        m("cls.seq_relationship.weight", next_sentence.out_proj.kernel, mapping.TRANSPOSED),
        m("cls.seq_relationship.bias", next_sentence.out_proj.bias),
    ]


def _check_tied(source: mapping.SourceTensors, name: str, tied_to: str) -> None:
    """Checks that the tensor `name`, if present, equals `tied_to`, and marks it used."""
    if name not in source or name in source.used:
        return
    if source.shape(name) != source.shape(tied_to) or not np.array_equal(
        source.read(name), source.read(tied_to)
    ):
        raise mapping.ConversionError(
            f"{source.description}: `{name}` differs from `{tied_to}`; Garden's masked-LM "
            "head ties them, so an untied checkpoint cannot be converted"
        )


def _ignorable(prefix: str, include_pretraining_heads: bool):
    def reason(name: str) -> str | None:
        if name in tuple(prefix + b for b in _BUFFERS):
            return "buffer"
        if name.startswith("cls.") and not include_pretraining_heads:
            return "pretraining-head"
        return None

    return reason


def convert_hf_bert_checkpoint(
    model_dir: str,
    output_dir: str,
    include_pretraining_heads: bool = False,
    overwrite: bool = False,
) -> command.ConversionResult:
    """Converts a Hugging Face BERT model folder into a Garden checkpoint and encoder config.

    Args:
      model_dir: The folder with `config.json` and `model.safetensors` (or a sharded
        `model.safetensors.index.json` and its shards).
      output_dir: The local folder to create (see `write_converted_checkpoint`).
      include_pretraining_heads: Also convert the `cls.` masked-LM and next-sentence heads
        into the checkpoint items `masked_lm` and `next_sentence` of a `BertPretrainer`.
      overwrite: Replace a converted checkpoint already in `output_dir`.

    Returns:
      What was written.

    Raises:
      ConversionError: For a bad config, a missing, misshaped or unknown tensor, or an
        output folder that may not be written; nothing is written then.
    """
    writing.check_output_dir(os.path.abspath(output_dir), overwrite)
    if not os.path.isdir(model_dir):
        raise mapping.ConversionError(f"--model_dir {model_dir} is not a folder")
    config = read_hf_config(os.path.join(model_dir, CONFIG_FILE))
    source = read_safetensors(model_dir)
    prefix = "bert." if "bert." + _EMBEDDINGS in source else ""
    if include_pretraining_heads:
        items: dict[str, Any] = dict(building.build_bert_pretrainer(config).checkpoint_items)
    else:
        items = {"encoder": building.build_bert_encoder(config)}
    mappings = _encoder_mappings(items["encoder"], source, prefix)
    if include_pretraining_heads:
        mappings += _head_mappings(source, prefix, items["masked_lm"], items["next_sentence"])
    mapping.assign_weights(mappings, source)
    if include_pretraining_heads:
        _check_tied(source, "cls.predictions.decoder.weight", prefix + _EMBEDDINGS)
        _check_tied(source, "cls.predictions.decoder.bias", "cls.predictions.bias")
    ignored = mapping.check_all_used(source, _ignorable(prefix, include_pretraining_heads))
    return command.finish_conversion(output_dir, items, config, overwrite, source, ignored)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Convert Hugging Face BERT weights (safetensors) into a Garden BERT "
        "checkpoint.",
    )
    parser.add_argument(
        "--model_dir",
        required=True,
        help=f"Folder with {CONFIG_FILE} and {SAFETENSORS_FILE} (or {SAFETENSORS_INDEX_FILE}).",
    )
    command.add_output_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 on success, 1 on a conversion error).

    Args:
      argv: The arguments without the program name; None reads `sys.argv[1:]`. Usage
        errors exit through argparse with status 2.

    Returns:
      The exit status.
    """
    args = _parser().parse_args(argv)
    return command.run_command(
        _PROG,
        lambda: convert_hf_bert_checkpoint(
            model_dir=args.model_dir,
            output_dir=args.output_dir,
            include_pretraining_heads=args.include_pretraining_heads,
            overwrite=args.overwrite,
        ),
    )


def run() -> int:
    """The `garden-convert-hf-bert` console command: `main` on `sys.argv`."""
    return main()


if __name__ == "__main__":
    raise SystemExit(main())
