"""garden-vision: computer-vision models for Garden, on Keras 3 and TensorFlow.

Model Garden's vision work rebuilt for Keras 3. Today: image classification end to end:
backbones (`garden_vision.modeling.backbones`: ResNet, RevNet, MobileNet, EfficientNet, ViT),
the classification model, ops (`garden_vision.ops`), input pipelines
(`garden_vision.dataloaders`), the built-in `garden_shapes` dataset, the image
classification task and its experiments, and export (`garden_vision.serving`), registered
through entry points so `garden list` finds them. Importing `garden_vision` loads none of
these (nor TensorFlow).

It builds on garden-core and never imports garden-nlp or garden-research.
"""

from garden_vision.__about__ import __version__

__all__ = ["__version__"]
