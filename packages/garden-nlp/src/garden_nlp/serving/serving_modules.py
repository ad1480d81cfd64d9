"""Export modules of the NLP tasks (`garden export`), Model Garden's `nlp.serving` modules.

Input types (`garden export --input_type`, several may be given as a comma list):

- `serve`: token ids, the encoder's inputs `input_word_ids`, `input_mask` and
  `input_type_ids` (int32, `[batch, seq_length]`, any length up to the model's maximum);
  the masked-LM module also takes `masked_lm_positions`.
- `serve_text` (sentence prediction): raw strings, one `[batch]` string tensor per text
  field of the data config (`text_fields`, e.g. `sentence` or `sentence1` and
  `sentence2`). The tokenizer and its vocabulary live inside the SavedModel, so serving
  needs neither the vocabulary file nor garden-nlp.

Outputs: sentence prediction `outputs` (logits, or scores for regression) and for
classification `probabilities` and `predictions` (class ids); question answering
`start_logits` and `end_logits`; tagging `logits` and `predictions`; masked LM `mlm_logits`
(and each classification head's logits by its name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from garden_core.config import ConfigError
from garden_core.export_base import ExportModule

_ID_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


def _id_specs(extra: tuple[str, ...] = ()) -> dict[str, tf.TensorSpec]:
    return {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in _ID_NAMES + extra}


class _TokenIdsModule(ExportModule):
    """Serves a model over token ids (`serve`); subclasses add input types and outputs."""

    INPUT_TYPES: tuple[str, ...] = ("serve",)
    EXTRA_INPUTS: tuple[str, ...] = ()

    def _signature_functions(self) -> dict[str, tf.types.experimental.GenericFunction]:
        specs = _id_specs(self.EXTRA_INPUTS)

        @tf.function(input_signature=[specs])
        def serve(inputs):
            return self.serve(inputs)

        return {"serve": serve}

    def get_inference_signatures(self, function_keys: Mapping[str, str]):
        unknown = set(function_keys) - set(self.INPUT_TYPES)
        if unknown:
            raise ValueError(
                f"input types {sorted(unknown)} are not offered; this module offers "
                + ", ".join(self.INPUT_TYPES)
            )
        functions = self._signature_functions()
        return {
            key: functions[input_type].get_concrete_function()
            for input_type, key in function_keys.items()
        }


class SentencePrediction(_TokenIdsModule):
    """Serves a `BertClassifier` over token ids (`serve`) or raw strings (`serve_text`)."""

    INPUT_TYPES = ("serve", "serve_text")

    def __init__(self, params, model, inference_step=None):
        super().__init__(params, model, inference_step=inference_step)
        self._num_classes = params.task.model.num_classes
        self._text_config = None
        data = params.task.validation_data
        if getattr(data, "vocab_file", None):
            from garden_nlp.data.sentence_prediction_dataloader import TextProcessor

            self._text_config = data
            # The evaluation pipeline's own tokenization and packing, so serving sees exactly
            # the inputs evaluation did.
            self.text_processor = TextProcessor(
                seq_length=data.seq_length,
                vocab_file=data.vocab_file,
                tokenization=data.tokenization,
                lower_case=data.lower_case,
                truncator=data.truncator,
                vocab_field="task.validation_data.vocab_file",
            )

    def serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        logits = tf.cast(self.inference_step(inputs, self.model), tf.float32)
        outputs = {"outputs": logits}
        if self._num_classes > 1:
            outputs["probabilities"] = tf.nn.softmax(logits, axis=-1)
            outputs["predictions"] = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return outputs

    def serve_text(self, texts: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Tokenizes and packs raw strings (one tensor per text field), then serves them."""
        segments = [texts[name] for name in self._text_config.text_fields]
        return self.serve(self.text_processor(segments))

    def _signature_functions(self):
        functions = super()._signature_functions()
        if self._text_config is None:
            return functions
        specs = {
            name: tf.TensorSpec([None], tf.string, name=name)
            for name in self._text_config.text_fields
        }

        @tf.function(input_signature=[specs])
        def serve_text(texts):
            return self.serve_text(texts)

        functions["serve_text"] = serve_text
        return functions

    def get_inference_signatures(self, function_keys: Mapping[str, str]):
        if "serve_text" in function_keys and self._text_config is None:
            raise ConfigError(
                "--input_type serve_text needs a tokenizer: set task.validation_data to a "
                "text data config (SentencePredictionTextDataConfig, as in "
                "bert/sentence_prediction_text) with its `vocab_file`"
            )
        return super().get_inference_signatures(function_keys)


class MaskedLM(_TokenIdsModule):
    """Serves a `BertPretrainer`: token ids plus `masked_lm_positions`."""

    EXTRA_INPUTS = ("masked_lm_positions",)

    def serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        outputs = self.inference_step(inputs, self.model)
        keep = {k: v for k, v in outputs.items() if k not in ("sequence_output", "pooled_output")}
        return {k: tf.cast(v, tf.float32) for k, v in keep.items()}


class QuestionAnswering(_TokenIdsModule):
    """Serves a `BertSpanLabeler`: answer start and end logits per token."""

    def serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        outputs = self.inference_step(inputs, self.model)
        return {
            "start_logits": tf.cast(outputs["start_logits"], tf.float32),
            "end_logits": tf.cast(outputs["end_logits"], tf.float32),
        }


class Tagging(_TokenIdsModule):
    """Serves a `BertTokenClassifier`: per-token logits and predicted tag ids."""

    def serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        logits = tf.cast(self.inference_step(inputs, self.model), tf.float32)
        return {"logits": logits, "predictions": tf.argmax(logits, -1, output_type=tf.int32)}
