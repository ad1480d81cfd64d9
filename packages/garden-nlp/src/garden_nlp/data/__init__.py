"""Input pipelines and data conversion of the NLP tasks (Model Garden's `official/nlp/data`).

Loaders take their config from `garden_nlp.configs.data` and return, from
`load(input_context=None)`, a batched `tf.data.Dataset` of `(features, labels)`, read
through `garden_core.data.InputReader` (sharding, shuffling, caching as every Garden task):

- `SentencePredictionDataLoader`, `SentencePredictionTextDataLoader`: sentence (pair)
  classification and regression from TFRecords, or from TSV / CSV / TFRecord text.
- `BertPretrainDataLoader`: masked-LM pretraining from TFRecords with static masks.
- `BertPretrainDynamicDataLoader`: the same from records of varying lengths, batched by
  length buckets.
- `BertPretrainTextDataLoader`: masked-LM pretraining from raw text (files or TFDS),
  masked dynamically.
- `QuestionAnsweringDataLoader`: SQuAD-style span prediction from TFRecords
  (`squad_lib` converts SQuAD JSON into them and turns logits back into answers).
- `TaggingDataLoader`: token tagging from TFRecords (`tagging_dataloader` also converts
  CoNLL-style text into them).

`tfrecord_lib` builds and atomically writes tf.Examples; `tokenization.FullTokenizer`
tokenizes eagerly for offline conversion. Names are imported on first use, so importing
this package loads neither TensorFlow Text nor the tokenizers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SentencePredictionDataLoader": "sentence_prediction_dataloader",
    "SentencePredictionTextDataLoader": "sentence_prediction_dataloader",
    "TextProcessor": "sentence_prediction_dataloader",
    "BertPretrainDataLoader": "pretrain_dataloader",
    "BertPretrainDynamicDataLoader": "pretrain_dynamic_dataloader",
    "BertPretrainTextDataLoader": "pretrain_text_dataloader",
    "QuestionAnsweringDataLoader": "question_answering_dataloader",
    "TaggingDataLoader": "tagging_dataloader",
    "FullTokenizer": "tokenization",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
