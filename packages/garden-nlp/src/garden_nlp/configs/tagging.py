"""Token tagging configs (Model Garden's `tagging`: named entities, part-of-speech tags).

The task (`garden_nlp.tasks.tagging`) fine-tunes a `BertTokenClassifier`; positions labelled
-1 (padding and non-initial word pieces) are ignored. It reports token accuracy and, over
the IOB/BIO spans of `class_names`, span precision, recall and F1.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config, DataConfig, TaskConfig
from garden_nlp.configs import data
from garden_nlp.configs.encoders import EncoderConfig


@dataclasses.dataclass
class ModelConfig(Config):
    """A token classifier over an encoder.

    Attributes:
      encoder: The encoder.
      head_dropout: Dropout before the classification layer.
      head_initializer_range: Standard deviation of its initializer.
    """

    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    head_dropout: float = 0.1
    head_initializer_range: float = 0.02

    restrictions = ("head_dropout >= 0", "head_dropout < 1")


@dataclasses.dataclass
class TaggingConfig(TaskConfig):
    """The tagging task.

    Attributes:
      init_checkpoint: A pretrained encoder checkpoint (key `encoder`).
      class_names: The tag names, in label-id order (e.g. `[O, B-PER, I-PER, ...]`); their
        number is the number of classes.
    """

    init_checkpoint: str = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    class_names: list[str] | None = None
    train_data: DataConfig = dataclasses.field(default_factory=data.TaggingDataConfig)
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: data.TaggingDataConfig(is_training=False, drop_remainder=False)
    )

    unsupported_fields = {
        **TaskConfig.unsupported_fields,
        "hub_module_url": ("", "TF Hub modules are not loaded; convert the checkpoint instead"),
    }
