"""Encoder networks and network-level heads (Model Garden's `nlp.modeling.networks`).

- `BertEncoder`: BERT's Transformer encoder.
- `AlbertEncoder`: ALBERT's encoder (factorized embeddings, one shared layer).
- `EncoderScaffold`: a BERT-shaped encoder with pluggable embedding and layer classes.
- `SpanLabeling`: start/end logits for extractive question answering.

Encoders take the dict `{"input_word_ids", "input_mask", "input_type_ids"}` (int32
`[batch, seq]`) and return a dict with `sequence_output`, `pooled_output` and
`encoder_outputs`.
"""

from garden_nlp.modeling.networks.albert_encoder import AlbertEncoder
from garden_nlp.modeling.networks.bert_encoder import BertEncoder
from garden_nlp.modeling.networks.encoder_scaffold import EncoderScaffold
from garden_nlp.modeling.networks.span_labeling import SpanLabeling

__all__ = ["AlbertEncoder", "BertEncoder", "EncoderScaffold", "SpanLabeling"]
