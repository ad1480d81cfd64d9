"""garden-nlp configs: encoders, data pipelines, tasks and experiments (no TensorFlow)."""
