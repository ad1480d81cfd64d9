"""The command-line side of the BERT checkpoint converters: flags, the run, the report.

The last stage (after mapping, building and writing): `add_output_flags` adds the flags
every converter shares, `finish_conversion` writes the converted items and describes them
(`ConversionResult`), and `run_command` runs a conversion, printing a `ConversionError` as
one line on stderr (exit status 1) or a summary of what was written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from garden_nlp.configs.encoders import BertEncoderConfig
from garden_nlp.tools.bert_checkpoint_mapping import ConversionError, SourceTensors
from garden_nlp.tools.bert_checkpoint_writing import (
    CHECKPOINT_NAME,
    ENCODER_CONFIG_FILE,
    write_converted_checkpoint,
)


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """What a conversion wrote.

    Attributes:
      checkpoint_path: The checkpoint (`OUTPUT_DIR/bert_model.ckpt`).
      encoder_config_path: The `encoder_config.yaml` beside it.
      checkpoint_items: The names of the checkpoint's items (`encoder`, and with the
        pretraining heads `masked_lm` and `next_sentence`).
      num_converted: How many source tensors were converted.
      ignored: The source tensors left out on purpose, by reason.
    """

    checkpoint_path: str
    encoder_config_path: str
    checkpoint_items: tuple[str, ...]
    num_converted: int
    ignored: dict[str, list[str]]


def finish_conversion(
    output_dir: str,
    items: Mapping[str, Any],
    config: BertEncoderConfig,
    overwrite: bool,
    source: SourceTensors,
    ignored: dict[str, list[str]],
) -> ConversionResult:
    """Writes the converted `items` and `config` (see `write_converted_checkpoint`) and
    describes what was written."""
    path = write_converted_checkpoint(output_dir, items, config, overwrite)
    return ConversionResult(
        checkpoint_path=path,
        encoder_config_path=os.path.join(os.path.dirname(path), ENCODER_CONFIG_FILE),
        checkpoint_items=tuple(items),
        num_converted=len(source.used),
        ignored=ignored,
    )


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """Adds `--output_dir`, `--include_pretraining_heads` and `--overwrite`."""
    parser.add_argument(
        "--output_dir",
        required=True,
        help=f"Folder to create with {CHECKPOINT_NAME} (items `encoder`, and with the heads "
        f"`masked_lm` and `next_sentence`) and {ENCODER_CONFIG_FILE}.",
    )
    parser.add_argument(
        "--include_pretraining_heads",
        action="store_true",
        help="Also convert the masked-LM and next-sentence heads, for a BertPretrainer.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace a converted checkpoint already in --output_dir.",
    )


def report(prog: str, result: ConversionResult) -> None:
    """Prints a summary of a successful conversion."""
    counts = ", ".join(f"{len(names)} {reason}" for reason, names in sorted(result.ignored.items()))
    ignored = f"; ignored {counts} tensors" if counts else ""
    print(
        f"{prog}: converted {result.num_converted} tensors into {result.checkpoint_path} "
        f"(items: {', '.join(result.checkpoint_items)}){ignored}; the encoder config for "
        f"`task.model.encoder` is in {result.encoder_config_path}"
    )


def run_command(prog: str, convert: Callable[[], ConversionResult]) -> int:
    """Runs `convert`, reporting a `ConversionError` as one line on stderr (status 1)."""
    try:
        result = convert()
    except ConversionError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    report(prog, result)
    return 0
