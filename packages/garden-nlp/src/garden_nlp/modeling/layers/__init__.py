"""Layers of garden-nlp's encoders and heads (Model Garden's `nlp.modeling.layers`).

- `TransformerEncoderBlock`: one Transformer encoder layer (post- or pre-norm).
- `OnDeviceEmbedding`: a token-id lookup table (gather, or one-hot matmul for TPUs).
- `PositionEmbedding`: learned absolute position embeddings.
- `SelfAttentionMask`: a `[batch, seq, seq]` attention mask from a padding mask.
- `MaskedLM`: the masked-language-model head, tied to the word embeddings.
- `ClassificationHead`: pools [CLS] and predicts class logits.
- `BertTokenizer`, `SentencepieceTokenizer`, `BertPackInputs`: the text layers, which live in
  `garden_nlp.text` and are offered here as in Model Garden.

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "BertPackInputs": "garden_nlp.text.pack_inputs:BertPackInputs",
        "BertTokenizer": "garden_nlp.text.bert_tokenizer:BertTokenizer",
        "ClassificationHead": ".cls_head:ClassificationHead",
        "MaskedLM": ".masked_lm:MaskedLM",
        "OnDeviceEmbedding": ".on_device_embedding:OnDeviceEmbedding",
        "PositionEmbedding": ".position_embedding:PositionEmbedding",
        "SelfAttentionMask": ".self_attention_mask:SelfAttentionMask",
        "SentencepieceTokenizer": "garden_nlp.text.sentencepiece_tokenizer:SentencepieceTokenizer",
        "TransformerEncoderBlock": ".transformer_encoder_block:TransformerEncoderBlock",
    },
)
