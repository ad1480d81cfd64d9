"""Task models over an encoder (Model Garden's `nlp.modeling.models`).

- `BertClassifier`: sentence(-pair) classification and regression.
- `BertPretrainer`: masked-LM and next-sentence pretraining.
- `BertSpanLabeler`: extractive question answering.
- `BertTokenClassifier`: per-token tagging.

Each is a `keras.Model` called on the encoder-inputs dict, with float32 logits, and has
`checkpoint_items`: the trackables a training checkpoint holds, at least `{"encoder": ...}`,
so `tf.train.Checkpoint(**model.checkpoint_items)` reads a pretrained encoder into any of
them.
"""

from garden_nlp.modeling.models.bert_classifier import BertClassifier
from garden_nlp.modeling.models.bert_pretrainer import BertPretrainer
from garden_nlp.modeling.models.bert_span_labeler import BertSpanLabeler
from garden_nlp.modeling.models.bert_token_classifier import BertTokenClassifier

__all__ = ["BertClassifier", "BertPretrainer", "BertSpanLabeler", "BertTokenClassifier"]
