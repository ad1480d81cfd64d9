"""Text preprocessing for BERT-style models, on TF.Text: tokenizers and input packing.

Keras layers that turn raw strings into encoder inputs inside the TensorFlow graph, so the
same code runs in `tf.data` pipelines, in training and in exported SavedModels (Model
Garden's `official.nlp.modeling.layers` text layers):

- `BertTokenizer`: WordPiece tokenization from a vocabulary file.
- `SentencepieceTokenizer`: SentencePiece tokenization from a `.model` file.
- `BertPackInputs`: packs segments into `input_word_ids`, `input_mask`, `input_type_ids`.

`garden_nlp.text.vocab` reads, learns and writes vocabularies (the `garden-build-vocab`
command runs its learners).
"""

from garden_nlp.text.bert_tokenizer import BertTokenizer
from garden_nlp.text.pack_inputs import BertPackInputs, bert_pack_inputs
from garden_nlp.text.sentencepiece_tokenizer import SentencepieceTokenizer

__all__ = ["BertPackInputs", "BertTokenizer", "SentencepieceTokenizer", "bert_pack_inputs"]
