"""garden-nlp: natural-language models for Garden, on Keras 3 and TensorFlow.

garden-nlp will hold Model Garden's NLP work rebuilt for Keras 3: Transformer encoders such as
BERT, tokenizers, input pipelines, and the tasks and experiments for sentence classification,
question answering and pretraining, each registered through entry points so `garden list`
finds them. It is being built up one piece at a time; for now it offers its version.

It builds on garden-core and never imports garden-vision or garden-research.
"""

from garden_nlp.__about__ import __version__

__all__ = ["__version__"]
