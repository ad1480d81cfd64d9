"""garden-nlp: natural-language models for Garden, on Keras 3, TensorFlow and tensorflow-text.

Model Garden's BERT stack rebuilt for Keras 3:

- `garden_nlp.modeling`: Transformer layers, encoders (`BertEncoder`, `AlbertEncoder`,
  `EncoderScaffold`) and models (`BertClassifier`, `BertPretrainer`, `BertSpanLabeler`,
  `BertTokenClassifier`).
- `garden_nlp.text`: tokenizer and packing layers over tensorflow-text.
- `garden_nlp.data`, `garden_nlp.tasks`, `garden_nlp.configs`: input pipelines, the sentence
  prediction, masked-LM, question answering and tagging tasks, and their experiments
  (`garden list experiments 'bert*'`), registered through entry points.
- `garden_nlp.tools`: vocabulary building, fine-tuning data, checkpoint converters.

Importing `garden_nlp` loads none of these (nor TensorFlow). It builds on garden-core and
never imports garden-vision or garden-research.
"""

from garden_nlp.__about__ import __version__

__all__ = ["__version__"]
