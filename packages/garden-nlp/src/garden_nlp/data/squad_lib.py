"""SQuAD 1.1 / 2.0 data under Model Garden's `official.nlp.data.squad_lib` names.

The three stages live in their own modules; this one gathers their public names, so code
written against Model Garden's `squad_lib` ports by renaming the import:

1. `squad_reader`: `read_squad_examples` (a SQuAD JSON file to `SquadExample`s).
2. `squad_features`: `convert_examples_to_features` (examples to the model's windows,
   `InputFeatures`), `write_features`, `generate_tf_record_from_json_file` and
   `prepare_eval_features` (windows to TFRecords).
3. `squad_postprocess`: `postprocess_output` and `write_predictions` (a model's logits,
   `RawResult`s, back to answer text), `get_final_text`.
"""

from __future__ import annotations

from garden_nlp.data.squad_features import (
    UNIQUE_ID_BASE,
    InputFeatures,
    convert_examples_to_features,
    feature_to_example,
    generate_tf_record_from_json_file,
    prepare_eval_features,
    write_features,
)
from garden_nlp.data.squad_postprocess import (
    RawResult,
    basic_tokenize,
    get_final_text,
    postprocess_output,
    write_predictions,
)
from garden_nlp.data.squad_reader import (
    SquadExample,
    SquadFormatError,
    load_squad_json,
    read_squad_examples,
    split_on_whitespace,
)

__all__ = [
    "UNIQUE_ID_BASE",
    "InputFeatures",
    "RawResult",
    "SquadExample",
    "SquadFormatError",
    "basic_tokenize",
    "convert_examples_to_features",
    "feature_to_example",
    "generate_tf_record_from_json_file",
    "get_final_text",
    "load_squad_json",
    "postprocess_output",
    "prepare_eval_features",
    "read_squad_examples",
    "split_on_whitespace",
    "write_features",
    "write_predictions",
]
