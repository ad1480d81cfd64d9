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

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "BertPretrainDataLoader": ".pretrain_dataloader:BertPretrainDataLoader",
        "BertPretrainDynamicDataLoader": (
            ".pretrain_dynamic_dataloader:BertPretrainDynamicDataLoader"
        ),
        "BertPretrainTextDataLoader": ".pretrain_text_dataloader:BertPretrainTextDataLoader",
        "FullTokenizer": ".tokenization:FullTokenizer",
        "QuestionAnsweringDataLoader": ".question_answering_dataloader:QuestionAnsweringDataLoader",
        "SentencePredictionDataLoader": (
            ".sentence_prediction_dataloader:SentencePredictionDataLoader"
        ),
        "SentencePredictionTextDataLoader": (
            ".sentence_prediction_dataloader:SentencePredictionTextDataLoader"
        ),
        "TaggingDataLoader": ".tagging_dataloader:TaggingDataLoader",
        "TextProcessor": ".sentence_prediction_dataloader:TextProcessor",
    },
)
