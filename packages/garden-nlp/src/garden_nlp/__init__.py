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

Model Garden's import paths work with `official.nlp` renamed to `garden_nlp`
(`from garden_nlp.modeling.networks import BertEncoder`), and the package itself is a short
namespace like `tensorflow_models.nlp`:

    import garden_nlp as gn

    encoder = gn.networks.BertEncoder(vocab_size=100, num_layers=2)
    classifier = gn.models.BertClassifier(encoder, num_classes=2)

Every name is imported on first use: importing `garden_nlp` loads neither TensorFlow nor
Keras. It builds on garden-core and never imports garden-vision or garden-research.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports
from garden_nlp.__about__ import __version__

# Short name -> where it lives (as `tensorflow_models.nlp` offers them, for what Garden
# implements, plus Garden's own subpackages).
_EXPORTS = {
    # tensorflow_models.nlp's names.
    "encoders": "garden_nlp.configs.encoders",
    "layers": "garden_nlp.modeling.layers",
    "models": "garden_nlp.modeling.models",
    "networks": "garden_nlp.modeling.networks",
    "serving_modules": "garden_nlp.serving.serving_modules",
    "tasks": "garden_nlp.tasks",
    # Garden's subpackages.
    "configs": "garden_nlp.configs",
    "data": "garden_nlp.data",
    "datasets": "garden_nlp.datasets",
    "metrics": "garden_nlp.metrics",
    "modeling": "garden_nlp.modeling",
    "serving": "garden_nlp.serving",
    "text": "garden_nlp.text",
}

__getattr__, __dir__, _lazy_names = _lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_lazy_names]
