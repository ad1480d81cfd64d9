"""Text preprocessing for BERT-style models, on TF.Text: tokenizers and input packing.

Keras layers that turn raw strings into encoder inputs inside the TensorFlow graph, so the
same code runs in `tf.data` pipelines, in training and in exported SavedModels (Model
Garden's `official.nlp.modeling.layers` text layers, which `garden_nlp.modeling.layers`
offers too):

- `BertTokenizer`: WordPiece tokenization from a vocabulary file.
- `SentencepieceTokenizer`: SentencePiece tokenization from a `.model` file.
- `BertPackInputs`: packs segments into `input_word_ids`, `input_mask`, `input_type_ids`.

`garden_nlp.text.vocab` reads, learns and writes vocabularies (the `garden-build-vocab`
command runs its learners). Names are imported on first use, so importing this package loads
neither TensorFlow nor TensorFlow Text.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "BertPackInputs": ".pack_inputs:BertPackInputs",
        "BertTokenizer": ".bert_tokenizer:BertTokenizer",
        "SentencepieceTokenizer": ".sentencepiece_tokenizer:SentencepieceTokenizer",
        "bert_pack_inputs": ".pack_inputs:bert_pack_inputs",
    },
)
