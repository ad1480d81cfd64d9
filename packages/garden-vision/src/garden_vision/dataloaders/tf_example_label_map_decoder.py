"""Detection tf.Examples whose classes are names, mapped to ids by a label map.

Model Garden's `dataloaders.tf_example_label_map_decoder`: like `TfExampleDecoder`, but the
class of each object is read from `image/object/class/text` and looked up in a label-map file,
so records written with one class numbering can train a model with another. A name missing
from the label map decodes as class -1, which the detection parsers reject with an error
naming the record.

Two label-map formats are read, chosen by the file's extension:

- `.csv`: one `id,name` row per class (Model Garden's format), e.g. `1,cat`;
- `.pbtxt` / `.txt`: the TF Object Detection API's `StringIntLabelMap` text proto,
  `item { id: 1 name: 'cat' }` (a `display_name` field is accepted and ignored).

`read_label_map(path)` returns the `{name: id}` dict; a malformed file is a `ValueError`
naming the file and line.
"""

from __future__ import annotations

import csv
import re

import tensorflow as tf

from garden_vision.dataloaders import tf_example_decoder

__all__ = ["TfExampleDecoderLabelMap", "read_label_map"]

# One token of the text proto: a brace, a `key:` label, a quoted string, or a bare word.
_PBTXT_TOKEN = re.compile(
    r"""\s*(?:
        (?P<brace>[{}])
      | (?P<key>\w+)\s*:
      | "(?P<dq>(?:[^"\\]|\\.)*)"
      | '(?P<sq>(?:[^'\\]|\\.)*)'
      | (?P<word>[^\s{}:"'\#]+)
    )""",
    re.VERBOSE,
)


def _add(name_to_id: dict[str, int], name: str, class_id: int, where: str) -> None:
    if not name:
        raise ValueError(f"{where}: empty class name")
    if name in name_to_id and name_to_id[name] != class_id:
        raise ValueError(
            f"{where}: class name {name!r} is given id {class_id} but already has id "
            f"{name_to_id[name]}"
        )
    name_to_id[name] = class_id


def _read_csv(path: str, text: str) -> dict[str, int]:
    name_to_id: dict[str, int] = {}
    for line_number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{path}:{line_number}"
        if len(row) != 2:
            raise ValueError(f"{where}: expected an `id,name` row, got {len(row)} fields {row}")
        try:
            class_id = int(row[0].strip())
        except ValueError:
            raise ValueError(f"{where}: class id {row[0]!r} is not an integer") from None
        _add(name_to_id, row[1].strip(), class_id, where)
    return name_to_id


def _pbtxt_tokens(path: str, text: str):
    """Yields `(kind, value, line_number)` for the tokens of a text proto, skipping comments."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0]
        position = 0
        while position < len(line):
            if line[position:].strip() == "":
                break
            match = _PBTXT_TOKEN.match(line, position)
            if match is None or match.end() == position:
                raise ValueError(f"{path}:{line_number}: cannot parse {line[position:].strip()!r}")
            position = match.end()
            if match.group("brace"):
                yield match.group("brace"), None, line_number
            elif match.group("key"):
                yield "key", match.group("key"), line_number
            elif match.group("dq") is not None:
                yield "string", match.group("dq"), line_number
            elif match.group("sq") is not None:
                yield "string", match.group("sq"), line_number
            else:
                yield "word", match.group("word"), line_number


def _skip_message(path: str, tokens, name: str, line_number: int) -> None:
    """Consumes a nested `name { ... }` message whose name was just read."""
    kind, _, _ = next(tokens, ("end", None, line_number))
    if kind != "{":
        raise ValueError(f"{path}:{line_number}: expected `field: value`, got {name!r}")
    depth = 1
    while depth:
        kind, _, _ = next(tokens, ("end", None, line_number))
        if kind == "end":
            raise ValueError(f"{path}:{line_number}: `{name} {{` is never closed")
        depth += {"{": 1, "}": -1}.get(kind, 0)


def _read_pbtxt(path: str, text: str) -> dict[str, int]:
    name_to_id: dict[str, int] = {}
    tokens = iter(_pbtxt_tokens(path, text))
    for kind, value, line_number in tokens:
        if kind != "word" or value != "item":
            raise ValueError(f"{path}:{line_number}: expected `item {{`, got {value or kind!r}")
        kind, value, line_number = next(tokens, ("end", None, line_number))
        if kind != "{":
            raise ValueError(f"{path}:{line_number}: expected `{{` after `item`")
        item_line = line_number
        fields: dict[str, str] = {}
        while True:
            kind, key, line_number = next(tokens, ("end", None, line_number))
            if kind == "}":
                break
            if kind == "word":
                # A nested message (`keypoints { ... }`): skipped, it names no class.
                _skip_message(path, tokens, key, line_number)
                continue
            if kind != "key":
                raise ValueError(
                    f"{path}:{line_number}: expected `field: value` or `}}` inside the item "
                    f"opened on line {item_line}"
                )
            kind, value, line_number = next(tokens, ("end", None, line_number))
            if kind not in ("string", "word"):
                raise ValueError(f"{path}:{line_number}: field {key!r} has no value")
            fields[key] = value
        where = f"{path}:{item_line}"
        if "id" not in fields or "name" not in fields:
            raise ValueError(f"{where}: an item needs both `id` and `name`, got {sorted(fields)}")
        try:
            class_id = int(fields["id"])
        except ValueError:
            raise ValueError(f"{where}: id {fields['id']!r} is not an integer") from None
        _add(name_to_id, fields["name"], class_id, where)
    return name_to_id


def read_label_map(label_map: str) -> dict[str, int]:
    """Reads a label-map file (`.csv`, or `.pbtxt` / `.txt` text proto) as `{name: id}`.

    Args:
      label_map: Path of the file (any `tf.io.gfile` path).

    Raises:
      ValueError: If the file cannot be read, has an unknown extension, is empty, or has a
        malformed line (the message names the file and line).
    """
    if not label_map:
        raise ValueError("label_map is empty: name a .csv or .pbtxt label-map file")
    lowered = label_map.lower()
    if lowered.endswith(".csv"):
        reader = _read_csv
    elif lowered.endswith((".pbtxt", ".txt")):
        reader = _read_pbtxt
    else:
        raise ValueError(
            f"label map {label_map!r}: unknown format; expected a .csv (`id,name` rows) or a "
            ".pbtxt (`item { id: 1 name: 'cat' }`) file"
        )
    try:
        with tf.io.gfile.GFile(label_map, "r") as f:
            text = f.read()
    except (tf.errors.NotFoundError, OSError) as error:
        raise ValueError(f"label map {label_map!r} cannot be read: {error}") from None
    name_to_id = reader(label_map, text)
    if not name_to_id:
        raise ValueError(f"label map {label_map!r} holds no classes")
    return name_to_id


class TfExampleDecoderLabelMap(tf_example_decoder.TfExampleDecoder):
    """Decodes detection tf.Examples, mapping `image/object/class/text` through a label map.

    Args:
      label_map: Path of a `.csv` or `.pbtxt` label-map file (see the module docstring).
      include_mask: Also decode the instance masks.
      regenerate_source_id: Ignore `image/source_id` and use a hash of the encoded image.
      mask_binarize_threshold: If set, masks are binarized at this value.
      attribute_names: Per-object integer attributes to decode.

    Raises:
      ValueError: If the label map cannot be read or is malformed.
    """

    def __init__(
        self,
        label_map: str,
        include_mask: bool = False,
        regenerate_source_id: bool = False,
        mask_binarize_threshold: float | None = None,
        attribute_names: list[str] | None = None,
    ):
        super().__init__(
            include_mask=include_mask,
            regenerate_source_id=regenerate_source_id,
            mask_binarize_threshold=mask_binarize_threshold,
            attribute_names=attribute_names,
        )
        self.name_to_id = read_label_map(label_map)
        self._keys_to_features["image/object/class/text"] = tf.io.VarLenFeature(tf.string)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(self.name_to_id), tf.string),
                tf.constant(list(self.name_to_id.values()), tf.int64),
            ),
            default_value=-1,
        )

    def _decode_classes(self, parsed: dict[str, tf.Tensor]) -> tf.Tensor:
        return self._table.lookup(parsed["image/object/class/text"])
