"""Keras 3 models of garden-vision: backbones, layers and task models."""
