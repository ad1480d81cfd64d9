"""garden-vision: computer-vision models for Garden, on Keras 3 and TensorFlow.

garden-vision will hold Model Garden's vision work rebuilt for Keras 3: backbones (ResNet,
EfficientNet, ...), decoders and heads, ops such as anchors and box coding, input pipelines,
and the tasks and experiments for image classification, detection and segmentation, each
registered through entry points so `garden list` finds them. It is being built up one piece
at a time; for now it offers its version.

It builds on garden-core and never imports garden-nlp or garden-research.
"""

from garden_vision.__about__ import __version__

__all__ = ["__version__"]
