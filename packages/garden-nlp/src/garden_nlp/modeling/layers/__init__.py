"""Layers of garden-nlp's encoders and heads (Model Garden's `nlp.modeling.layers`).

- `TransformerEncoderBlock`: one Transformer encoder layer (post- or pre-norm).
- `OnDeviceEmbedding`: a token-id lookup table (gather, or one-hot matmul for TPUs).
- `PositionEmbedding`: learned absolute position embeddings.
- `SelfAttentionMask`: a `[batch, seq, seq]` attention mask from a padding mask.
- `MaskedLM`: the masked-language-model head, tied to the word embeddings.
- `ClassificationHead`: pools [CLS] and predicts class logits.
"""

from garden_nlp.modeling.layers.cls_head import ClassificationHead
from garden_nlp.modeling.layers.masked_lm import MaskedLM
from garden_nlp.modeling.layers.on_device_embedding import OnDeviceEmbedding
from garden_nlp.modeling.layers.position_embedding import PositionEmbedding
from garden_nlp.modeling.layers.self_attention_mask import SelfAttentionMask
from garden_nlp.modeling.layers.transformer_encoder_block import TransformerEncoderBlock

__all__ = [
    "ClassificationHead",
    "MaskedLM",
    "OnDeviceEmbedding",
    "PositionEmbedding",
    "SelfAttentionMask",
    "TransformerEncoderBlock",
]
