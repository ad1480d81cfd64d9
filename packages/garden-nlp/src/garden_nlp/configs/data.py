"""Input-pipeline configs of the NLP tasks (Model Garden's `official/nlp/data` configs).

Every config keeps Model Garden's field names and defaults, so a Model Garden experiment
YAML's `train_data` / `validation_data` loads as is; fields Garden adds are marked so.

- `SentencePredictionDataConfig`: sentence (pair) classification or regression from
  TFRecords of tokenized features.
- `SentencePredictionTextDataConfig`: the same from raw text (TSV, CSV or TFRecords of
  string features), tokenized in the input pipeline.
- `BertPretrainDataConfig`: masked-LM pretraining from TFRecords with static masks.
- `BertPretrainDynamicDataConfig`: the same from records of varying lengths, batched by
  length buckets.
- `BertPretrainTextDataConfig`: masked-LM pretraining from raw text with dynamic masking.
- `QADataConfig`: SQuAD-style span prediction from TFRecords of features.
- `TaggingDataConfig`: token tagging (NER, POS) from TFRecords of features.

This module defines configs only (no TensorFlow); the loaders are in `garden_nlp.data`.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import ConfigError, DataConfig

_HUB = "TF Hub preprocessing modules are not loaded; set `vocab_file` and `tokenization`"
_XLNET = "XLNet-format SQuAD features are not produced"

FILE_TYPES = ("tfrecord", "tfrecord_compressed")
"""`file_type` values of the loaders that read TFRecords of tf.Examples."""

TEXT_FILE_TYPES = ("tsv", "csv")
"""`file_type` values of delimited text files whose first row names the columns."""

TOKENIZATIONS = ("WordPiece", "SentencePiece")
"""`tokenization` values: BERT's WordPiece or a SentencePiece model (ALBERT)."""

LABEL_TYPES = ("int", "float")
"""`label_type` values: class ids (classification) or floats (regression)."""


@dataclasses.dataclass
class SentencePredictionDataConfig(DataConfig):
    """Sentence (pair) classification or regression from TFRecords of tokenized features.

    Records are tf.Examples with Model Garden's (and original BERT's) feature names:
    `input_ids`, `input_mask`, `segment_ids` (int64, `seq_length` each) and the label under
    `label_field`; `garden-create-finetuning-data --task_type=classification` writes them.

    Attributes:
      input_path: TFRecord file pattern(s); see `DataConfig`.
      global_batch_size: Examples per step over all replicas.
      is_training: Shuffle and repeat (training) or read once in order (evaluation).
      seq_length: The length of every feature vector in the records.
      label_type: `int` (class ids, classification) or `float` (regression).
      include_example_id: Also read the int64 `example_id` feature and pass it on in the
        features as `example_id`.
      label_field: The tf.Example feature holding the label.
      label_name: Optional `(label_field, name)`: the label is also passed on in the
        features under `name` (Model Garden's renaming of a label key).
      file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    global_batch_size: int = 32
    is_training: bool | None = True
    seq_length: int = 128
    label_type: str = "int"
    include_example_id: bool = False
    label_field: str = "label_ids"
    label_name: tuple[str, str] | None = None
    file_type: str = "tfrecord"

    restrictions = ("seq_length > 0",)


@dataclasses.dataclass
class SentencePredictionTextDataConfig(DataConfig):
    """Sentence (pair) classification or regression from raw text, tokenized on the fly.

    The text comes from `input_path` files of `file_type`:

    - `tsv` / `csv`: delimited text whose first row names the columns (every file must
      have the same header). TSV fields are split on tabs only (quotes are plain
      characters, as in the GLUE files); CSV fields may be double-quoted.
    - `tfrecord` / `tfrecord_compressed`: tf.Examples with one string feature per text
      field and the label as an int64 or float feature (Model Garden's layout).

    Or from a prepared TFDS dataset (`tfds_name`, `tfds_split`) whose features are named
    by `text_fields` and `label_field`.

    Attributes:
      input_path: File pattern(s); see `DataConfig`.
      label_type: `int` (class ids, classification) or `float` (regression).
      tfds_name: A prepared TFDS dataset to read instead of files.
      tfds_split: The TFDS split.
      text_fields: The one or two columns (or features) holding the text segments, packed
        in this order as `[CLS] A [SEP] B [SEP]`.
      label_field: The column (or feature) holding the label.
      global_batch_size: Examples per step over all replicas.
      seq_length: The packed sequence length; longer segments are truncated.
      is_training: Shuffle and repeat (training) or read once in order (evaluation).
      tokenization: `WordPiece` (BERT) or `SentencePiece` (ALBERT).
      vocab_file: The WordPiece vocabulary (one token a line), or the SentencePiece model
        file when `tokenization` is `SentencePiece`.
      lower_case: Lower-case (and strip accents from) the text before tokenizing.
      file_type: `tsv`, `csv`, `tfrecord` or `tfrecord_compressed`.
      include_example_id: Also pass on the integer `example_id` column (or feature) in the
        features.
      label_list: Garden: the label names of a text label column, in class-id order
        (`["contradiction", "entailment", "neutral"]`); a label not listed is an error
        naming it. None: the label column holds the numbers themselves.
      truncator: Garden: how over-long segment pairs are cut, `round_robin` (one token at a
        time from each segment, as BERT) or `waterfall` (from the end of the last segment).
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    label_type: str = "int"
    tfds_name: str = ""
    tfds_split: str = ""
    text_fields: list[str] | None = None
    label_field: str = "label"
    global_batch_size: int = 32
    seq_length: int = 128
    is_training: bool | None = True
    tokenization: str = "WordPiece"
    vocab_file: str = ""
    lower_case: bool = True
    file_type: str = "tfrecord"
    include_example_id: bool = False
    label_list: list[str] | None = None
    truncator: str = "round_robin"

    unsupported_fields = {
        **DataConfig.unsupported_fields,
        "preprocessing_hub_module_url": ("", _HUB),
    }
    restrictions = ("seq_length > 2",)


@dataclasses.dataclass
class BertPretrainDataConfig(DataConfig):
    """Masked-LM (and next-sentence) pretraining from TFRecords with static masks.

    Records are original BERT's `create_pretraining_data` tf.Examples: `input_ids`,
    `input_mask`, `segment_ids` (`seq_length` int64 each), `masked_lm_positions`,
    `masked_lm_ids` (int64) and `masked_lm_weights` (float), `max_predictions_per_seq`
    each, and `next_sentence_labels` (one int64: 0 when segment B follows A, 1 when it is
    random).

    Attributes:
      input_path: TFRecord file pattern(s); see `DataConfig`.
      global_batch_size: Examples per step over all replicas.
      is_training: Shuffle and repeat (training) or read once in order (evaluation).
      seq_length: The length of the token features in the records.
      max_predictions_per_seq: The length of the masked-LM features in the records.
      use_next_sentence_label: Read `next_sentence_labels` (for a next-sentence head).
      use_position_id: Also read `position_ids` (`seq_length` int64) into the features.
      use_v2_feature_names: The records name the token features `input_word_ids` and
        `input_type_ids` instead of `input_ids` and `segment_ids`.
      file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    global_batch_size: int = 512
    is_training: bool | None = True
    seq_length: int = 512
    max_predictions_per_seq: int = 76
    use_next_sentence_label: bool = True
    use_position_id: bool = False
    use_v2_feature_names: bool = False
    file_type: str = "tfrecord"

    restrictions = ("seq_length > 0", "max_predictions_per_seq > 0")


@dataclasses.dataclass
class BertPretrainTextDataConfig(DataConfig):
    """Masked-LM (and next-sentence) pretraining from raw text, masked anew every epoch.

    Documents come from `input_path` files of `file_type`:

    - `txt`: plain text, one sentence per line, documents separated by blank lines
      (original BERT's pretraining text format).
    - `tfrecord` / `tfrecord_compressed`: tf.Examples whose string features
      `text_field_names` hold one document each, its sentences separated by newlines
      (Model Garden's layout).

    Or from a prepared TFDS dataset (`tfds_name`, `tfds_split`, `tfds_data_dir`), such as
    `wikipedia/20201201.en`, whose string features `text_field_names` hold the documents
    in the same layout; `file_type` is then not used.

    With `use_next_sentence_label`, each sentence of a batch of `doc_batch_size` documents
    becomes segment A of one example, and segment B is the next sentence of its document
    (label 0) or, half of the time and always after a document's last sentence, a random
    sentence of another document of the batch (label 1), as original BERT labels them.
    Without it, each record is one example whose segments are its `text_field_names`.

    Attributes:
      input_path: File pattern(s); see `DataConfig`.
      doc_batch_size: Documents per batch over all replicas (each replica takes its
        share) from which next-sentence pairs are drawn: random sentences come from the
        other documents of the same batch.
      global_batch_size: Examples per step over all replicas.
      is_training: Shuffle and repeat (training) or read once in order (evaluation).
      seq_length: The packed sequence length; longer pairs are truncated.
      max_predictions_per_seq: The most masked positions per example; the masked-LM
        features are padded to this length.
      use_next_sentence_label: Build sentence pairs with next-sentence labels.
      text_field_names: The tf.Example string features holding the text; more than one
        is allowed only without next-sentence labels. Ignored for `txt` files.
      vocab_file_path: The WordPiece vocabulary, or the SentencePiece model file when
        `tokenization` is `SentencePiece`.
      masking_rate: The share of (non-special) tokens selected for prediction.
      use_whole_word_masking: Select whole words: every word piece of a selected word is
        masked (WordPiece only).
      file_type: `txt`, `tfrecord` or `tfrecord_compressed`.
      tokenization: Garden: `WordPiece` (BERT) or `SentencePiece` (ALBERT).
      lower_case: Garden: lower-case (and strip accents from) the text before tokenizing.
      random_token_rate: Garden: the share of selected tokens replaced by a random token.
      unchanged_token_rate: Garden: the share of selected tokens left as they are; the
        rest (0.8 by default) are replaced by `[MASK]`.
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    doc_batch_size: int = 8
    global_batch_size: int = 512
    is_training: bool | None = True
    seq_length: int = 512
    max_predictions_per_seq: int = 76
    use_next_sentence_label: bool = True
    text_field_names: list[str] | None = dataclasses.field(default_factory=lambda: ["text"])
    vocab_file_path: str = ""
    masking_rate: float = 0.15
    use_whole_word_masking: bool = False
    file_type: str = "tfrecord"
    tokenization: str = "WordPiece"
    lower_case: bool = True
    random_token_rate: float = 0.1
    unchanged_token_rate: float = 0.1

    restrictions = (
        "seq_length > 3",
        "max_predictions_per_seq > 0",
        "doc_batch_size > 0",
        "masking_rate > 0",
        "masking_rate <= 1",
        "random_token_rate >= 0",
        "unchanged_token_rate >= 0",
    )


@dataclasses.dataclass
class QADataConfig(DataConfig):
    """SQuAD-style span prediction from TFRecords of features.

    Records are the tf.Examples `garden_nlp.data.squad_features` writes: `input_ids`,
    `input_mask`, `segment_ids` (`seq_length` int64 each), `unique_ids` and, for training,
    `start_positions` and `end_positions`. As in Model Garden, an evaluation pipeline's
    `input_path` is the SQuAD JSON file: the task converts it with `squad_features` (using the
    tokenizer and window settings below) into `input_preprocessed_data_path` and reads
    that.

    Attributes:
      input_path: Training: the TFRecord feature files. Evaluation: the SQuAD JSON file.
      global_batch_size: Examples per step over all replicas.
      is_training: Read start and end positions (training) or unique ids (evaluation).
      seq_length: The length of the token features.
      version_2_with_negative: SQuAD 2.0: questions may have no answer.
      input_preprocessed_data_path: Where evaluation features are written and read.
      doc_stride: Tokens between the starts of consecutive context windows.
      query_length: The most question tokens; longer questions are truncated.
      vocab_file: The vocabulary evaluation data is converted with: a WordPiece vocabulary,
        or the SentencePiece model file when `tokenization` is `SentencePiece`.
      tokenization: `WordPiece` (BERT) or `SentencePiece` (ALBERT).
      do_lower_case: Lower-case the text when converting.
      file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    global_batch_size: int = 48
    is_training: bool | None = True
    seq_length: int = 384
    version_2_with_negative: bool = False
    input_preprocessed_data_path: str = ""
    doc_stride: int = 128
    query_length: int = 64
    vocab_file: str = ""
    tokenization: str = "WordPiece"
    do_lower_case: bool = True
    file_type: str = "tfrecord"

    unsupported_fields = {**DataConfig.unsupported_fields, "xlnet_format": (False, _XLNET)}
    restrictions = ("seq_length > 0", "doc_stride > 0", "query_length > 0")


@dataclasses.dataclass
class TaggingDataConfig(DataConfig):
    """Token tagging (NER, POS) from TFRecords of features.

    Records are tf.Examples with `input_ids`, `input_mask`, `segment_ids` and `label_ids`
    (`seq_length` int64 each; label -1 at positions that are not scored: `[CLS]`, `[SEP]`,
    padding and every word piece after a word's first) and, optionally, `sentence_id` and
    `sub_sentence_id` (which piece of a sentence split to fit `seq_length`).

    Attributes:
      is_training: Shuffle and repeat (training) or read once in order (evaluation).
      seq_length: The length of every feature vector in the records.
      include_sentence_id: Read `sentence_id` and `sub_sentence_id` into the features.
      file_type: `tfrecord` or `tfrecord_compressed` (GZIP).
    """

    is_training: bool | None = True
    seq_length: int = 128
    include_sentence_id: bool = False
    file_type: str = "tfrecord"

    restrictions = ("seq_length > 0",)


_DATA_SERVICE = "tf.data service offloading is not implemented"


@dataclasses.dataclass
class BertPretrainDynamicDataConfig(DataConfig):
    """Masked-LM pretraining from TFRecords of varying lengths, batched by length buckets.

    Model Garden's `pretrain_dynamic_dataloader.BertPretrainDataConfig`
    (`bert/pretraining_dynamic`). Records hold the features of `BertPretrainDataConfig`
    at any length: the token features (`input_ids`, `input_mask`, `segment_ids` and, with
    `use_position_id`, `position_ids`) of one record share a length, and the masked-LM
    features (`masked_lm_positions`, `masked_lm_ids`, `masked_lm_weights`) share theirs.
    Trailing `[PAD]` (id 0) word ids are dropped, so fixed-length records of static
    pretraining data are read by their real length too.

    Each example goes to the first bucket of `seq_bucket_lengths` that holds it; a batch
    takes examples of one bucket only, and its token features are padded with zeros to
    the bucket's length (`input_mask` 0 there). The masked-LM features of a batch are padded
    with zeros to the longest of them (`masked_lm_weights` 0 there). Every bucket batches
    the per-replica batch size (`global_batch_size` split over the replicas); with several
    replicas, `num_replicas_in_sync` consecutive batches come from one bucket, so all
    replicas of a step see the same length.

    Attributes:
      input_path: TFRecord file pattern(s); see `DataConfig`.
      global_batch_size: Examples per step over all replicas.
      is_training: Shuffle and repeat (training) or read once in order (evaluation).
      seq_bucket_lengths: The bucket lengths, increasing; the last is the longest record
        accepted (a longer one is an error).
      seq_bucket_window_scale: Model Garden widens the window of batches grouped by bucket
        by this factor only when tf.data service runs without round-robin reads; without
        tf.data service (Garden's pipelines), the window is `num_replicas_in_sync` batches
        in Model Garden too.
      use_next_sentence_label: Read `next_sentence_labels` (for a next-sentence head).
      use_position_id: Also read `position_ids` into the features.
      deterministic: Keep the record order of parallel reads (None: tf.data's default).
      use_v2_feature_names: The records name the token features `input_word_ids` and
        `input_type_ids` instead of `input_ids` and `segment_ids`.
      seq_length: Garden: the model's sequence length; no bucket may be longer.
      file_type: Garden: `tfrecord` or `tfrecord_compressed` (GZIP).
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    global_batch_size: int = 512
    is_training: bool | None = True
    seq_bucket_lengths: tuple[int, ...] = (128, 256, 384, 512)
    seq_bucket_window_scale: int = 8
    use_next_sentence_label: bool = True
    use_position_id: bool = False
    deterministic: bool | None = False
    use_v2_feature_names: bool = False
    seq_length: int = 512
    file_type: str = "tfrecord"

    unsupported_fields = {
        **DataConfig.unsupported_fields,
        "tf_data_service_job_name": ("bert_pretrain", _DATA_SERVICE),
        "enable_round_robin_tf_data_service": (False, _DATA_SERVICE),
    }
    restrictions = ("global_batch_size > 0", "seq_length > 0", "seq_bucket_window_scale > 0")

    def validate(self, path: str = "") -> None:
        """Checks the restrictions and that `seq_bucket_lengths` is a valid bucketing.

        Raises:
          ConfigError: If `seq_bucket_lengths` is empty, not strictly increasing, holds a
            length below 1 or one above `seq_length`; the message names the field.
        """
        super().validate(path)
        field = f"`{path + '.' if path else ''}seq_bucket_lengths`"
        lengths = list(self.seq_bucket_lengths)
        if not lengths:
            raise ConfigError(f"{field} is empty; give the bucket lengths, e.g. [128, 256, 512]")
        if lengths[0] < 1:
            raise ConfigError(f"{field} = {lengths}: bucket lengths must be at least 1")
        if any(b <= a for a, b in zip(lengths, lengths[1:], strict=False)):
            raise ConfigError(f"{field} = {lengths}: bucket lengths must strictly increase")
        if lengths[-1] > self.seq_length:
            raise ConfigError(
                f"{field} = {lengths}: the last bucket is longer than `seq_length` "
                f"({self.seq_length})"
            )
