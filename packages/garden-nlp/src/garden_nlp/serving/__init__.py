"""Export modules of the NLP tasks: serving over token ids or raw strings.

- `serving_modules`: `SentencePrediction`, `MaskedLM`, `QuestionAnswering`, `Tagging`
  (Model Garden's `official.nlp.serving.serving_modules`).

Submodules are imported on first use (`garden_nlp.serving.serving_modules`).
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(__name__, {})
