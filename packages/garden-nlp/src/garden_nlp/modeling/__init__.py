"""Keras 3 NLP models of garden-nlp (Model Garden's `official/nlp/modeling`).

- `layers`: Transformer blocks, embeddings, attention masks, heads and text layers.
- `networks`: encoders (`BertEncoder`, `AlbertEncoder`, `EncoderScaffold`) and the span head.
- `models`: `BertClassifier`, `BertPretrainer`, `BertSpanLabeler`, `BertTokenClassifier`.
- `encoders.build_encoder`: an encoder from its `EncoderConfig`.

Submodules are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "encoders": ".encoders",
        "layers": ".layers",
        "models": ".models",
        "networks": ".networks",
    },
)
