"""The optimizer settings of Model Garden's BERT experiments, shared by all of them."""

from __future__ import annotations

from typing import Any

from garden_core.config import OptimizationConfig


def bert_adamw(
    initial_learning_rate: float, warmup: dict[str, Any] | None = None, **schedule: Any
) -> OptimizationConfig:
    """AdamW (weight decay 0.01, none on LayerNorm and biases) with polynomial decay to 0.

    Args:
      initial_learning_rate: The peak learning rate.
      warmup: The warmup config (default: Model Garden's polynomial warmup).
      **schedule: More `learning_rate.polynomial` settings (e.g. `decay_steps`).
    """
    return OptimizationConfig.from_dict(
        {
            "optimizer": {
                "type": "adamw",
                "adamw": {
                    "weight_decay_rate": 0.01,
                    "exclude_from_weight_decay": ["LayerNorm", "layer_norm", "bias"],
                },
            },
            "learning_rate": {
                "type": "polynomial",
                "polynomial": {
                    "initial_learning_rate": initial_learning_rate,
                    "end_learning_rate": 0.0,
                    **schedule,
                },
            },
            "warmup": warmup or {"type": "polynomial"},
        }
    )
