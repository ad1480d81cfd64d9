"""Configs of garden-vision's models, data pipelines, tasks and experiments.

These modules define dataclass configs only and import no TensorFlow, so `garden list` and
`garden show` stay fast. Field names and defaults follow Model Garden's
`official.vision.configs`, so a Model Garden YAML for an experiment Garden offers loads as is.
"""
