"""Input pipelines: record decoders and parsers that turn decoded records into model inputs.

- `classification_input`: tf.Example / TFDS decoders and the image-classification `Parser`
  (Model Garden's `official.vision.dataloaders.classification_input`).

Submodules are imported on first use (`garden_vision.dataloaders.classification_input`).
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(__name__, {})
