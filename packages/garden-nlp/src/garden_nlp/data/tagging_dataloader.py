"""Token tagging (NER, POS) data: the TFRecord input pipeline and conversion from CoNLL text.

`TaggingDataLoader` reads the features of `TaggingDataConfig` and yields batches of
`(features, labels)`: features `input_word_ids`, `input_mask`, `input_type_ids` (int32
`[batch, seq_length]`) and, with `include_sentence_id`, `sentence_id` and
`sub_sentence_id` (`[batch]`); labels the int32 tag ids `[batch, seq_length]`, -1 where a
position is not scored.

Conversion, as Model Garden's `tagging_data_lib`:

- `read_tagging_file`: CoNLL-style text, one word per line with its tag in the last
  column (tab- or space-separated), blank lines between sentences (`-DOCSTART-` lines are
  skipped); a line with the word alone (test data) gets tag id 0.
- `tokenize_example`: splits words into word pieces; the first piece of a word carries the
  word's tag and the others -1. A word without pieces, or with more than fit, becomes
  `[UNK]`. A sentence longer than `max_seq_length - 2` pieces is split into several
  examples (`sub_sentence_id` 0, 1, ...).
- `example_to_features` / `convert_tagging_examples` / `write_tagging_tfrecord`: the
  padded features `[CLS] pieces [SEP]` with labels -1 at `[CLS]`, `[SEP]` and padding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence

import tensorflow as tf

from garden_core.data import InputReader
from garden_nlp.configs.data import TaggingDataConfig
from garden_nlp.data import tfrecord_lib
from garden_nlp.data.tokenization import FullTokenizer

PADDING_LABEL_ID = -1
"""The label id of positions that are not scored (no loss, no metric)."""


class TaggingDataLoader:
    """Reads tagging features from TFRecords.

    Args:
        params: The `TaggingDataConfig`.

    Raises:
        ConfigError: For an unknown `file_type`.
    """

    def __init__(self, params: TaggingDataConfig):
        self._params = params
        self._dataset_fn = tfrecord_lib.pick_dataset_fn(params.file_type)

    def name_to_features_spec(self) -> dict[str, tf.io.FixedLenFeature]:
        """The tf.Example features read."""
        length = self._params.seq_length
        spec = {
            name: tf.io.FixedLenFeature([length], tf.int64)
            for name in ("input_ids", "input_mask", "segment_ids", "label_ids")
        }
        if self._params.include_sentence_id:
            spec["sentence_id"] = tf.io.FixedLenFeature([], tf.int64)
            spec["sub_sentence_id"] = tf.io.FixedLenFeature([], tf.int64)
        return spec

    def _decode(self, record: tf.Tensor) -> dict[str, tf.Tensor]:
        return tfrecord_lib.decode_example(record, self.name_to_features_spec())

    def _parse(self, record: Mapping[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        features = {
            "input_word_ids": record["input_ids"],
            "input_mask": record["input_mask"],
            "input_type_ids": record["segment_ids"],
        }
        if self._params.include_sentence_id:
            features["sentence_id"] = record["sentence_id"]
            features["sub_sentence_id"] = record["sub_sentence_id"]
        return features, record["label_ids"]

    def load(self, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """The batched dataset of `(features, labels)` for one input pipeline."""
        reader = InputReader(
            self._params,
            dataset_fn=self._dataset_fn,
            decoder_fn=self._decode,
            parser_fn=self._parse,
        )
        return reader.read(input_context)


@dataclasses.dataclass
class TaggingExample:
    """A sentence's words (or word pieces) and their tag ids.

    Attributes:
        sentence_id: The sentence's index in its file.
        words: The words (after `tokenize_example`: word-piece ids).
        label_ids: One tag id per entry of `words` (-1 for pieces that are not scored).
        sub_sentence_id: Which piece of a sentence split to fit the sequence length.
    """

    sentence_id: int
    words: list = dataclasses.field(default_factory=list)
    label_ids: list[int] = dataclasses.field(default_factory=list)
    sub_sentence_id: int = 0


def read_tagging_file(path: str, label_list: Sequence[str]) -> list[TaggingExample]:
    """Reads CoNLL-style tagged sentences (see the module docstring).

    Args:
        path: The text file (any path `tf.io.gfile` reads).
        label_list: The tag names; a tag's id is its position.

    Raises:
        ValueError: For a tag not in `label_list` or an unreadable file, naming the file
            and line.
    """
    label_ids = {label: i for i, label in enumerate(label_list)}
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            lines = f.read().splitlines()
    except (tf.errors.OpError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the tagging file {path!r}: {error}") from None
    examples: list[TaggingExample] = []
    current = TaggingExample(sentence_id=0)
    for number, line in enumerate(lines, start=1):
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            if current.words:
                examples.append(current)
                current = TaggingExample(sentence_id=len(examples))
            continue
        columns = [c.strip() for c in (line.split("\t") if "\t" in line else line.split())]
        label = 0
        if len(columns) > 1:
            tag = columns[-1]
            if tag not in label_ids:
                raise ValueError(
                    f"{path}:{number}: tag {tag!r} is not one of the labels "
                    f"({', '.join(label_list)})"
                )
            label = label_ids[tag]
        current.words.append(columns[0])
        current.label_ids.append(label)
    if current.words:
        examples.append(current)
    return examples


def tokenize_example(
    example: TaggingExample, tokenizer: FullTokenizer, max_seq_length: int
) -> list[TaggingExample]:
    """Splits an example's words into word-piece ids, in as many examples as needed.

    Args:
        example: A sentence of words and tag ids.
        tokenizer: The model's tokenizer.
        max_seq_length: The feature length (2 positions go to `[CLS]` and `[SEP]`).

    Returns:
        Examples whose `words` are piece ids and whose labels are -1 past a word's first
        piece, each at most `max_seq_length - 2` long.

    Raises:
        ValueError: If a tag id is negative.
    """
    if any(label < 0 for label in example.label_ids):
        raise ValueError(
            f"sentence {example.sentence_id} has a negative tag id: {example.label_ids}"
        )
    budget = max_seq_length - 2
    if budget < 1:
        raise ValueError(f"max_seq_length {max_seq_length} leaves no room for words")
    unknown = tokenizer.token_id("[UNK]")
    pieces_of_words = tokenizer.tokenize_ids(example.words) if example.words else []
    pieces_list = []
    current = TaggingExample(sentence_id=example.sentence_id)
    for word, pieces, label in zip(example.words, pieces_of_words, example.label_ids, strict=True):
        if (not pieces or len(pieces) > budget) and word:
            pieces = [unknown]
        if current.words and len(current.words) + len(pieces) > budget:
            pieces_list.append(current)
            current = TaggingExample(
                sentence_id=example.sentence_id, sub_sentence_id=current.sub_sentence_id + 1
            )
        for i, piece in enumerate(pieces):
            current.words.append(piece)
            current.label_ids.append(label if i == 0 else PADDING_LABEL_ID)
    if current.words:
        pieces_list.append(current)
    return pieces_list


def example_to_features(
    example: TaggingExample, tokenizer: FullTokenizer, max_seq_length: int
) -> dict[str, list[int]]:
    """The padded features of one tokenized example (from `tokenize_example`)."""
    input_ids = [tokenizer.token_id("[CLS]"), *example.words, tokenizer.token_id("[SEP]")]
    label_ids = [PADDING_LABEL_ID, *example.label_ids, PADDING_LABEL_ID]
    if len(input_ids) > max_seq_length:
        raise ValueError(
            f"sentence {example.sentence_id} has {len(input_ids)} tokens, more than "
            f"max_seq_length {max_seq_length}; split it with `tokenize_example`"
        )
    padding = max_seq_length - len(input_ids)
    pad_id = tokenizer.special_tokens.get("padding_id", 0)
    return {
        "input_ids": input_ids + [pad_id] * padding,
        "input_mask": [1] * len(input_ids) + [0] * padding,
        "segment_ids": [0] * max_seq_length,
        "label_ids": label_ids + [PADDING_LABEL_ID] * padding,
        "sentence_id": [example.sentence_id],
        "sub_sentence_id": [example.sub_sentence_id],
    }


def convert_tagging_examples(
    examples: Iterable[TaggingExample], tokenizer: FullTokenizer, max_seq_length: int
) -> Iterator[dict[str, list[int]]]:
    """Yields the features of every sentence, split where it is too long."""
    for example in examples:
        for piece in tokenize_example(example, tokenizer, max_seq_length):
            yield example_to_features(piece, tokenizer, max_seq_length)


def write_tagging_tfrecord(
    examples: Iterable[TaggingExample],
    tokenizer: FullTokenizer,
    max_seq_length: int,
    output_path: str,
) -> int:
    """Writes the features of `examples` to a TFRecord file atomically.

    Returns:
        The number of features written (split sentences count once per piece).
    """
    return tfrecord_lib.write_examples(
        output_path, convert_tagging_examples(examples, tokenizer, max_seq_length)
    )
