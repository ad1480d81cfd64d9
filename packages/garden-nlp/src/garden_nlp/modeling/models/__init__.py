"""Task models over an encoder (Model Garden's `nlp.modeling.models`).

- `BertClassifier`: sentence(-pair) classification and regression.
- `BertPretrainer`: masked-LM and next-sentence pretraining.
- `BertSpanLabeler`: extractive question answering.
- `BertTokenClassifier`: per-token tagging.

Each is a `keras.Model` called on the encoder-inputs dict, with float32 logits, and has
`checkpoint_items`: the trackables a training checkpoint holds, at least `{"encoder": ...}`,
so `tf.train.Checkpoint(**model.checkpoint_items)` reads a pretrained encoder into any of
them. `builders` registers them in `garden.models`.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "BertClassifier": ".bert_classifier:BertClassifier",
        "BertPretrainer": ".bert_pretrainer:BertPretrainer",
        "BertSpanLabeler": ".bert_span_labeler:BertSpanLabeler",
        "BertTokenClassifier": ".bert_token_classifier:BertTokenClassifier",
    },
)
