"""Encoder networks and network-level heads (Model Garden's `nlp.modeling.networks`).

- `BertEncoder`: BERT's Transformer encoder.
- `AlbertEncoder`: ALBERT's encoder (factorized embeddings, one shared layer).
- `EncoderScaffold`: a BERT-shaped encoder with pluggable embedding and layer classes.
- `SpanLabeling`: start/end logits for extractive question answering.

Encoders take the dict `{"input_word_ids", "input_mask", "input_type_ids"}` (int32
`[batch, seq]`) and return a dict with `sequence_output`, `pooled_output` and
`encoder_outputs`. Names are imported on first use, so importing this package loads no
TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "AlbertEncoder": ".albert_encoder:AlbertEncoder",
        "BertEncoder": ".bert_encoder:BertEncoder",
        "EncoderScaffold": ".encoder_scaffold:EncoderScaffold",
        "SpanLabeling": ".span_labeling:SpanLabeling",
    },
)
