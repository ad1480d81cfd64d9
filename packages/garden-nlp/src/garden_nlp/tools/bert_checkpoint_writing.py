"""Writing a converted BERT checkpoint, atomically, with its Garden encoder config.

The third stage of the BERT checkpoint converters (`write_converted_checkpoint`): a
`tf.train.Checkpoint` with the item `encoder` (plus `masked_lm` and `next_sentence` with
the heads) saved as `bert_model.ckpt`, a `checkpoint` state file (so
`tf.train.latest_checkpoint(output_dir)` finds it) and `encoder_config.yaml`, the Garden
`EncoderConfig` to put under `task.model.encoder`. Everything is written into a hidden
temporary folder next to the output folder and renamed into place only when complete
(`garden_orbit.utils.atomic_write.atomic_directory`), so a failed conversion leaves no output
folder behind, and a failed replacement (`--overwrite`) keeps the earlier checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from garden_nlp.configs.encoders import BertEncoderConfig, EncoderConfig
from garden_nlp.tools.bert_checkpoint_mapping import ConversionError, listing
from garden_orbit.utils import atomic_write

CHECKPOINT_NAME = "bert_model.ckpt"
"""The prefix of the converted checkpoint inside the output folder."""

ENCODER_CONFIG_FILE = "encoder_config.yaml"
"""The Garden `EncoderConfig` (type `bert`) written beside the checkpoint."""

_STATE_FILE = "checkpoint"
_CONFIG_HEADER = (
    f"# The Garden encoder of {CHECKPOINT_NAME} beside this file: use it as\n"
    "# `task.model.encoder`, with `task.init_checkpoint` pointing at the checkpoint.\n"
)


def _owned_entry(name: str) -> bool:
    return name in (_STATE_FILE, ENCODER_CONFIG_FILE) or name.startswith(CHECKPOINT_NAME + ".")


def check_output_dir(output_dir: str, overwrite: bool) -> None:
    """Checks, before any work, that `output_dir` may receive a converted checkpoint.

    It may be absent or empty; with `overwrite`, it may also hold a converted checkpoint
    (only the files a conversion writes), which is then replaced.

    Raises:
      ConversionError: If it is a file, or holds files and `overwrite` is not set, or holds
        files a conversion does not write (never deleted, even with `overwrite`).
    """
    if not os.path.lexists(output_dir):
        return
    if not os.path.isdir(output_dir):
        raise ConversionError(f"--output_dir {output_dir} exists and is not a folder")
    entries = os.listdir(output_dir)
    if not entries:
        return
    if not overwrite:
        raise ConversionError(
            f"--output_dir {output_dir} already holds {listing(entries, 5)}; choose another "
            "folder or pass --overwrite to replace a converted checkpoint"
        )
    foreign = [e for e in entries if not _owned_entry(e)]
    if foreign:
        raise ConversionError(
            f"--output_dir {output_dir} holds files a conversion does not write "
            f"({listing(foreign, 5)}); --overwrite replaces only a converted checkpoint"
        )


def write_converted_checkpoint(
    output_dir: str,
    checkpoint_items: Mapping[str, Any],
    encoder_config: BertEncoderConfig,
    overwrite: bool = False,
) -> str:
    """Writes a converted checkpoint and its encoder config, atomically.

    Args:
      output_dir: A local folder, absent or empty (or, with `overwrite`, holding only an
        earlier converted checkpoint). Its parent folders are created.
      checkpoint_items: The `tf.train.Checkpoint` items, at least `encoder`.
      encoder_config: Written as a Garden `EncoderConfig` (type `bert`) YAML.
      overwrite: Replace an earlier converted checkpoint in `output_dir`.

    Returns:
      The checkpoint path (`output_dir/bert_model.ckpt`), for `tf.train.Checkpoint.read`.

    Raises:
      ConversionError: If `output_dir` may not be written (see `check_output_dir`) or a
        write fails; nothing is left at `output_dir` by a failed first write, and an earlier
        checkpoint there is kept when a replacement fails.
    """
    import tensorflow as tf

    output_dir = os.path.abspath(output_dir)
    check_output_dir(output_dir, overwrite)
    if os.path.isdir(output_dir) and not os.listdir(output_dir):
        os.rmdir(output_dir)  # An empty folder is replaced like an absent one.
    try:
        with atomic_write.atomic_directory(output_dir, replace=overwrite) as staging:
            os.mkdir(staging)
            tf.train.Checkpoint(**checkpoint_items).write(os.path.join(staging, CHECKPOINT_NAME))
            atomic_write.write_text(
                os.path.join(staging, _STATE_FILE),
                f'model_checkpoint_path: "{CHECKPOINT_NAME}"\n'
                f'all_model_checkpoint_paths: "{CHECKPOINT_NAME}"\n',
            )
            atomic_write.write_text(
                os.path.join(staging, ENCODER_CONFIG_FILE),
                _CONFIG_HEADER + EncoderConfig(type="bert", bert=encoder_config).as_yaml(),
            )
            check_output_dir(output_dir, overwrite)  # Nothing foreign appeared meanwhile.
    except (OSError, tf.errors.OpError) as error:
        raise ConversionError(f"cannot write {output_dir}: {error}") from None
    return os.path.join(output_dir, CHECKPOINT_NAME)
