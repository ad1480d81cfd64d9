"""Keras 3 NLP models of garden-nlp (Model Garden's `official/nlp/modeling`).

- `layers`: Transformer blocks, embeddings, attention masks and heads.
- `networks`: encoders (`BertEncoder`, `AlbertEncoder`, `EncoderScaffold`) and the span head.
- `models`: `BertClassifier`, `BertPretrainer`, `BertSpanLabeler`, `BertTokenClassifier`.
- `encoders.build_encoder`: an encoder from its `EncoderConfig`.
"""

from garden_nlp.modeling import encoders, layers, models, networks

__all__ = ["encoders", "layers", "models", "networks"]
