"""BERT pretraining model configs (Model Garden's `nlp.configs.bert`): an encoder plus heads.

`PretrainerConfig` describes a `BertPretrainer`: the encoder, the masked-LM head and any
sentence-level classification heads (`ClsHeadConfig`), such as next-sentence prediction.
"""

from __future__ import annotations

import dataclasses

from garden_core.config import Config
from garden_nlp.configs.encoders import EncoderConfig


@dataclasses.dataclass
class ClsHeadConfig(Config):
    """A classification head over one token of the sequence output (`ClassificationHead`).

    Attributes:
      inner_dim: Width of the dense layer before the output projection; 0 for none.
      num_classes: Number of classes.
      activation: Activation of the dense layer.
      dropout_rate: Dropout before the output projection.
      cls_token_idx: The token whose output is classified (0: `[CLS]`).
      name: The head's name, which keys its output (e.g. `next_sentence`).
    """

    inner_dim: int = 0
    num_classes: int = 2
    activation: str | None = "tanh"
    dropout_rate: float = 0.0
    cls_token_idx: int = 0
    name: str | None = None

    restrictions = ("inner_dim >= 0", "num_classes > 0", "dropout_rate >= 0", "dropout_rate < 1")


@dataclasses.dataclass
class PretrainerConfig(Config):
    """A BERT pretrainer: encoder, masked-LM head and classification heads.

    Attributes:
      encoder: The encoder.
      cls_heads: Sentence-level heads; a head named `next_sentence` is trained on the
        next-sentence labels.
      mlm_activation: Activation of the masked-LM head's transform layer.
      mlm_initializer_range: Standard deviation of the masked-LM head's initializer.
    """

    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    cls_heads: list[ClsHeadConfig] = dataclasses.field(default_factory=list)
    mlm_activation: str = "gelu"
    mlm_initializer_range: float = 0.02

    unsupported_fields = {
        "mlm_output_weights_use_proj": (
            False,
            "a projected masked-LM output embedding (MobileBERT) is not offered",
        ),
    }
