"""Converts an original TF1 BERT checkpoint (google-research/bert) into Garden's BERT.

The source is a name-based checkpoint written by `tf.compat.v1.train.Saver`, such as the
released `bert_model.ckpt` of `uncased_L-12_H-768_A-12`, with its `bert_config.json`. Its
variables map onto Garden's `BertEncoder` as follows (`{i}` is the layer):

* `bert/embeddings/word_embeddings`, `token_type_embeddings`, `position_embeddings`,
  `LayerNorm/{gamma,beta}`: the embedding tables and the embedding LayerNorm;
* `bert/encoder/layer_{i}/attention/self/{query,key,value}/{kernel,bias}`: the attention
  projections; kernels `[hidden, hidden]` become per-head `[hidden, heads, head_dim]`,
  biases `[hidden]` become `[heads, head_dim]`;
* `bert/encoder/layer_{i}/attention/output/dense/{kernel,bias}`: the attention output,
  kernel `[hidden, hidden]` -> `[heads, head_dim, hidden]`;
* `.../attention/output/LayerNorm`, `.../intermediate/dense`, `.../output/dense`,
  `.../output/LayerNorm`, and `bert/pooler/dense`: as they are.

With `--include_pretraining_heads` the checkpoint also holds a `BertPretrainer`'s heads:
`cls/predictions/transform/dense`, `cls/predictions/transform/LayerNorm` and
`cls/predictions/output_bias` (the masked-LM head, whose output table is the word
embeddings), and the next-sentence head made of the pooler (`bert/pooler/dense`) and
`cls/seq_relationship/output_weights` (`[2, hidden]`, transposed) and `output_bias`.

Optimizer slots (`.../adam_m`, `.../adam_v`, and `Adam`, `Adam_1`, `beta1_power`,
`beta2_power` of `tf.compat.v1.train.AdamOptimizer`), `global_step` and, without the flag,
the `cls/` heads are ignored; any other variable is an error listing it, as is a missing one.

Usage:

    garden-convert-tf1-bert --checkpoint_to_convert=uncased_L-12_H-768_A-12/bert_model.ckpt \\
        --bert_config_file=uncased_L-12_H-768_A-12/bert_config.json --output_dir=OUT \\
        [--include_pretraining_heads] [--overwrite]

`OUT/bert_model.ckpt` then initializes a task (`task.init_checkpoint`), and
`OUT/encoder_config.yaml` is its `task.model.encoder`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from garden_nlp.configs.encoders import BertEncoderConfig
from garden_nlp.tools import bert_checkpoint_building as building
from garden_nlp.tools import bert_checkpoint_command as command
from garden_nlp.tools import bert_checkpoint_mapping as mapping
from garden_nlp.tools import bert_checkpoint_writing as writing

_PROG = "garden-convert-tf1-bert"

_OPTIMIZER_SLOT_SUFFIXES = ("/adam_m", "/adam_v", "/Adam", "/Adam_1")
_OPTIMIZER_VARIABLES = ("beta1_power", "beta2_power")
# Fields of released `bert_config.json` files that original BERT's model never reads.
_INERT_FIELDS = (
    "directionality",
    "pooler_fc_size",
    "pooler_num_attention_heads",
    "pooler_num_fc_layers",
    "pooler_size_per_head",
    "pooler_type",
)
_MODEL_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
)


def read_bert_config(bert_config_file: str) -> BertEncoderConfig:
    """Reads an original BERT `bert_config.json` into a Garden `BertEncoderConfig`.

    Args:
      bert_config_file: The JSON file (TF1 BERT field names: `vocab_size`, `hidden_size`,
        `num_hidden_layers`, `num_attention_heads`, `intermediate_size`, `hidden_act`,
        `hidden_dropout_prob`, `attention_probs_dropout_prob`, `max_position_embeddings`,
        `type_vocab_size`, `initializer_range`).

    Raises:
      ConversionError: For an unreadable file, a missing or mistyped field, an unsupported
        activation, or a field original BERT does not have (e.g. ALBERT's `embedding_size`).
    """
    config = mapping.read_json_config(bert_config_file, "BERT config")
    unknown = [k for k in config if k not in _MODEL_FIELDS and k not in _INERT_FIELDS]
    if unknown:
        raise mapping.ConversionError(
            f"{bert_config_file}: {mapping.listing(unknown)} are not fields of an original BERT "
            f"config (expected {mapping.listing(_MODEL_FIELDS)})"
        )
    pooler_type = config.get("pooler_type", "first_token_transform")
    if pooler_type != "first_token_transform":
        raise mapping.ConversionError(
            f"{bert_config_file}: `pooler_type` = {pooler_type!r} is not supported; Garden's "
            "BERT pools with a dense tanh layer on the first token (`first_token_transform`)"
        )
    return mapping.encoder_config_from_fields(config, bert_config_file)


def _encoder_mappings(encoder: Any) -> list[mapping.WeightMapping]:
    m = mapping.WeightMapping
    mappings = [
        m("bert/embeddings/word_embeddings", encoder.word_embeddings.embeddings),
        m("bert/embeddings/token_type_embeddings", encoder.type_embeddings.embeddings),
        m("bert/embeddings/position_embeddings", encoder.position_embedding.embeddings),
        m("bert/embeddings/LayerNorm/gamma", encoder.embedding_norm.gamma),
        m("bert/embeddings/LayerNorm/beta", encoder.embedding_norm.beta),
    ]
    for i, block in enumerate(encoder.transformer_layers):
        scope = f"bert/encoder/layer_{i}"
        attention = block.attention_layer
        for name, dense in (
            ("query", attention.query_dense),
            ("key", attention.key_dense),
            ("value", attention.value_dense),
        ):
            mappings += [
                m(f"{scope}/attention/self/{name}/kernel", dense.kernel, mapping.MERGED_HEADS_OUT),
                m(f"{scope}/attention/self/{name}/bias", dense.bias, mapping.MERGED_HEADS_OUT),
            ]
        mappings += [
            m(
                f"{scope}/attention/output/dense/kernel",
                attention.output_dense.kernel,
                mapping.MERGED_HEADS_IN,
            ),
            m(f"{scope}/attention/output/dense/bias", attention.output_dense.bias),
            m(f"{scope}/attention/output/LayerNorm/gamma", block.attention_layer_norm.gamma),
            m(f"{scope}/attention/output/LayerNorm/beta", block.attention_layer_norm.beta),
            m(f"{scope}/intermediate/dense/kernel", block.intermediate_dense.kernel),
            m(f"{scope}/intermediate/dense/bias", block.intermediate_dense.bias),
            m(f"{scope}/output/dense/kernel", block.output_dense.kernel),
            m(f"{scope}/output/dense/bias", block.output_dense.bias),
            m(f"{scope}/output/LayerNorm/gamma", block.output_layer_norm.gamma),
            m(f"{scope}/output/LayerNorm/beta", block.output_layer_norm.beta),
        ]
    mappings += [
        m("bert/pooler/dense/kernel", encoder.pooler_layer.kernel),
        m("bert/pooler/dense/bias", encoder.pooler_layer.bias),
    ]
    return mappings


def _head_mappings(masked_lm: Any, next_sentence: Any) -> list[mapping.WeightMapping]:
    m = mapping.WeightMapping
    return [
        m("cls/predictions/transform/dense/kernel", masked_lm.dense.kernel),
        m("cls/predictions/transform/dense/bias", masked_lm.dense.bias),
        m("cls/predictions/transform/LayerNorm/gamma", masked_lm.layer_norm.gamma),
        m("cls/predictions/transform/LayerNorm/beta", masked_lm.layer_norm.beta),
        m("cls/predictions/output_bias", masked_lm.bias),
        m("bert/pooler/dense/kernel", next_sentence.dense.kernel),
        m("bert/pooler/dense/bias", next_sentence.dense.bias),
        m("cls/seq_relationship/output_weights", next_sentence.out_proj.kernel, mapping.TRANSPOSED),
        m("cls/seq_relationship/output_bias", next_sentence.out_proj.bias),
    ]


def _ignorable(include_pretraining_heads: bool):
    def reason(name: str) -> str | None:
        if name.endswith(_OPTIMIZER_SLOT_SUFFIXES) or name in _OPTIMIZER_VARIABLES:
            return "optimizer"
        if name == "global_step":
            return "global_step"
        if name.startswith("cls/") and not include_pretraining_heads:
            return "pretraining-head"
        return None

    return reason


def read_tf1_checkpoint(checkpoint_to_convert: str) -> mapping.SourceTensors:
    """Opens a TF1 name-based checkpoint (a prefix, or a folder with a `checkpoint` file).

    Raises:
      ConversionError: If no checkpoint is found there, it cannot be read, or it is an
        object-based (TF2) checkpoint.
    """
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(checkpoint_to_convert)
        shapes = reader.get_variable_to_shape_map()
    except (ValueError, tf.errors.OpError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise mapping.ConversionError(
            f"--checkpoint_to_convert {checkpoint_to_convert}: cannot read a checkpoint "
            f"there ({message})"
        ) from None
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes:
        raise mapping.ConversionError(
            f"--checkpoint_to_convert {checkpoint_to_convert} is an object-based (TF2) "
            "checkpoint, not an original TF1 BERT checkpoint"
        )
    return mapping.SourceTensors(
        shapes, reader.get_tensor, f"TF1 checkpoint {checkpoint_to_convert}"
    )


def convert_tf1_bert_checkpoint(
    checkpoint_to_convert: str,
    bert_config_file: str,
    output_dir: str,
    include_pretraining_heads: bool = False,
    overwrite: bool = False,
) -> command.ConversionResult:
    """Converts an original TF1 BERT checkpoint into a Garden checkpoint and encoder config.

    Args:
      checkpoint_to_convert: The checkpoint prefix (e.g. `.../bert_model.ckpt`) or its folder.
      bert_config_file: Its `bert_config.json`.
      output_dir: The local folder to create (see `write_converted_checkpoint`).
      include_pretraining_heads: Also convert the `cls/` masked-LM and next-sentence heads
        into the checkpoint items `masked_lm` and `next_sentence` of a `BertPretrainer`.
      overwrite: Replace a converted checkpoint already in `output_dir`.

    Returns:
      What was written.

    Raises:
      ConversionError: For a bad config, a missing, misshaped or unknown variable, or an
        output folder that may not be written; nothing is written then.
    """
    writing.check_output_dir(os.path.abspath(output_dir), overwrite)
    config = read_bert_config(bert_config_file)
    source = read_tf1_checkpoint(checkpoint_to_convert)
    if include_pretraining_heads:
        items: dict[str, Any] = dict(building.build_bert_pretrainer(config).checkpoint_items)
    else:
        items = {"encoder": building.build_bert_encoder(config)}
    mappings = _encoder_mappings(items["encoder"])
    if include_pretraining_heads:
        mappings += _head_mappings(items["masked_lm"], items["next_sentence"])
    mapping.assign_weights(mappings, source)
    ignored = mapping.check_all_used(source, _ignorable(include_pretraining_heads))
    return command.finish_conversion(output_dir, items, config, overwrite, source, ignored)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Convert an original TF1 BERT checkpoint into a Garden BERT checkpoint.",
    )
    parser.add_argument(
        "--checkpoint_to_convert",
        required=True,
        help="The TF1 checkpoint prefix (e.g. uncased_L-12_H-768_A-12/bert_model.ckpt).",
    )
    parser.add_argument(
        "--bert_config_file", required=True, help="The checkpoint's bert_config.json."
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
        lambda: convert_tf1_bert_checkpoint(
            checkpoint_to_convert=args.checkpoint_to_convert,
            bert_config_file=args.bert_config_file,
            output_dir=args.output_dir,
            include_pretraining_heads=args.include_pretraining_heads,
            overwrite=args.overwrite,
        ),
    )


def run() -> int:
    """The `garden-convert-tf1-bert` console command: `main` on `sys.argv`."""
    return main()


if __name__ == "__main__":
    raise SystemExit(main())
