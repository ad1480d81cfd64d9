"""garden-nlp configs: encoders, data pipelines, tasks and experiments (no TensorFlow).

As Model Garden's `official.nlp.configs`: `encoders` (`EncoderConfig` and its branches,
`build_encoder`), `bert` (`ClsHeadConfig`, `PretrainerConfig`), `finetuning_experiments`
and `pretraining_experiments`; plus `data` (the input pipelines' configs) and one module per
task. Submodules are imported on first use (`garden_nlp.configs.encoders`).
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(__name__, {})
