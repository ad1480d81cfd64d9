"""SQuAD conversion (windows, answer positions), the QA input pipeline and postprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from garden_nlp.configs.data import QADataConfig
from garden_nlp.data import squad_lib
from garden_nlp.data.question_answering_dataloader import QuestionAnsweringDataLoader
from garden_nlp.data.tokenization import FullTokenizer
from garden_nlp.metrics import squad_evaluate

VOCAB = [
    *["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    *["john", "smith", "was", "born", "in", "paris", "(", "189", "##5", "-", "1943", ")", "."],
    *["he", "ran", "a", "big", "red", "house", "france", "where", "who", "what", "year", "?"],
]
CONTEXT = "John Smith was born in Paris (1895-1943). He ran a big red house in France."
QUESTIONS = [
    ("q1", "Where was John Smith born?", "Paris"),
    ("q2", "What year was John Smith born?", "1895"),
    ("q3", "Who ran a big red house in France?", "He"),
]
SEQ_LENGTH, QUERY_LENGTH, STRIDE = 20, 6, 6


def squad_json(path, questions=QUESTIONS, impossible=()) -> str:
    qas = []
    for qas_id, question, answer in questions:
        entry = {"id": qas_id, "question": question, "is_impossible": qas_id in impossible}
        entry["answers"] = (
            []
            if qas_id in impossible
            else [{"text": answer, "answer_start": CONTEXT.index(answer)}]
        )
        qas.append(entry)
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return str(path)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> FullTokenizer:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(f"{token}\n" for token in VOCAB))
    return FullTokenizer(str(path), lower_case=True)


def convert(examples, tokenizer, is_training):
    return list(
        squad_lib.convert_examples_to_features(
            examples, tokenizer, SEQ_LENGTH, STRIDE, QUERY_LENGTH, is_training
        )
    )


def test_examples_and_sliding_windows_with_answer_positions(tmp_path, tokenizer):
    examples = squad_lib.read_squad_examples(squad_json(tmp_path / "train.json"), True)
    assert examples[0].doc_tokens[5:7] == ["Paris", "(1895-1943)."]
    assert (examples[1].start_position, examples[1].end_position) == (6, 6)
    features = convert(examples, tokenizer, is_training=True)
    # 22 context tokens, 11 per window (20 - 6 query - 3 specials), stride 6: 3 windows each.
    assert [f.example_index for f in features] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [f.unique_id for f in features] == list(range(1000000000, 1000000009))
    first = features[0]
    assert first.tokens[:8] == ["[CLS]", "where", "was", "john", "smith", "born", "?", "[SEP]"]
    assert first.tokens[-1] == "[SEP]"
    assert first.input_ids[: len(first.tokens)] == tokenizer.convert_tokens_to_ids(first.tokens)
    assert first.segment_ids == [0] * 8 + [1] * 12
    assert first.input_mask == [1] * 20
    # "Paris" is context token 5 = window position 13, only in the first window.
    assert [(f.start_position, f.end_position) for f in features[:3]] == [(13, 13), (0, 0), (0, 0)]
    assert first.tokens[13] == "paris"
    # "1895" inside "(1895-1943)." is narrowed to its pieces "189 ##5".
    second = features[3]
    assert second.tokens[second.start_position : second.end_position + 1] == ["189", "##5"]
    assert (features[4].start_position, features[4].end_position) == (9, 10)
    # Each context token has exactly one window of maximal context.
    flags_of_token = {}
    for feature in features[:3]:
        for position, is_max in feature.token_is_max_context.items():
            context_token = position - 8 + STRIDE * feature.doc_span_index
            flags_of_token.setdefault(context_token, []).append(is_max)
    assert sorted(flags_of_token) == list(range(22))
    assert all(sum(flags) == 1 for flags in flags_of_token.values())
    # Tokens map back to their words: "Paris" is word 5, "(1895-1943)." word 6.
    assert [first.token_to_orig_map[p] for p in range(13, 19)] == [5] + [6] * 5


def test_tfrecords_feed_the_question_answering_loader(tmp_path, tokenizer):
    examples = squad_lib.read_squad_examples(squad_json(tmp_path / "train.json"), True)
    path = str(tmp_path / "train.tfrecord")
    train_features = convert(examples, tokenizer, True)
    count, _ = squad_lib.write_features(train_features, path, True)
    assert count == 9
    params = QADataConfig(
        input_path=path, seq_length=SEQ_LENGTH, global_batch_size=9, shuffle_buffer_size=1
    )
    features, labels = next(iter(QuestionAnsweringDataLoader(params).load()))
    assert set(features) == {"input_word_ids", "input_mask", "input_type_ids"}
    assert set(labels) == {"start_positions", "end_positions"}
    assert features["input_word_ids"].shape == (9, SEQ_LENGTH)
    # One epoch of the 9 windows: q1 [13, 0, 0], q2 [15, 9, 0], q3 "he" [0, 15, 9].
    assert sorted(labels["start_positions"].numpy().tolist()) == [0, 0, 0, 0, 9, 9, 13, 15, 15]
    assert [f.start_position for f in train_features] == [13, 0, 0, 15, 9, 0, 0, 15, 9]

    eval_path = str(tmp_path / "eval.tfrecord")
    eval_examples, eval_features = squad_lib.prepare_eval_features(
        squad_json(tmp_path / "dev.json"),
        tokenizer,
        eval_path,
        max_seq_length=SEQ_LENGTH,
        doc_stride=STRIDE,
        max_query_length=QUERY_LENGTH,
    )
    assert len(eval_examples) == 3
    assert len(eval_features) == 9
    params = params.replace(input_path=eval_path, is_training=False)
    features, labels = next(iter(QuestionAnsweringDataLoader(params).load()))
    assert labels == {}
    np.testing.assert_array_equal(features["unique_ids"], [f.unique_id for f in eval_features])


def logits_for(features, spans):
    """Results with logit 10 at the given (unique_id -> (start, end)) and 0 elsewhere."""
    results = []
    for feature in features:
        start, end = np.zeros(SEQ_LENGTH), np.zeros(SEQ_LENGTH)
        if feature.unique_id in spans:
            start[spans[feature.unique_id][0]] = 10.0
            end[spans[feature.unique_id][1]] = 10.0
        results.append(squad_lib.RawResult(feature.unique_id, start.tolist(), end.tolist()))
    return results


def test_logits_become_answer_texts_of_the_original_context(tmp_path, tokenizer):
    dev = squad_json(tmp_path / "dev.json")
    examples = squad_lib.read_squad_examples(dev, False)
    features = convert(examples, tokenizer, is_training=False)
    ids = [f.unique_id for f in features]
    # q1: "paris" in window 0; q2: "189 ##5" in window 0; q3: "he", context token 13, has
    # the most context in window 1 (at 15), not in window 2 (at 9).
    assert features[7].tokens[15] == features[8].tokens[9] == "he"
    spans = {ids[0]: (13, 13), ids[3]: (15, 16), ids[7]: (15, 15), ids[8]: (9, 9)}
    results = logits_for(features, spans)
    predictions, nbest, _ = squad_lib.postprocess_output(
        examples, features, results, n_best_size=3, max_answer_length=5
    )
    assert predictions == {"q1": "Paris", "q2": "1895", "q3": "He"}
    # Runner-up starts and ends give the n-best list, best first, as original text.
    results[0].start_logits[14], results[0].start_logits[15] = 5.0, 4.0
    results[0].end_logits[14], results[0].end_logits[16] = 5.0, 4.0
    _, nbest, _ = squad_lib.postprocess_output(
        examples, features, results, n_best_size=3, max_answer_length=5
    )
    texts = [entry["text"] for entry in nbest["q1"]]
    assert texts == ["Paris", "Paris (", "Paris (1895"]
    probabilities = [entry["probability"] for entry in nbest["q1"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0)
    assert squad_evaluate(dev, predictions) == {"exact_match": 1.0, "final_f1": 1.0}
    # Spans longer than max_answer_length are never chosen.
    long_span = {ids[0]: (9, 18)}
    short, _, _ = squad_lib.postprocess_output(
        examples, features, logits_for(features, long_span), n_best_size=20, max_answer_length=3
    )
    assert len(short["q1"].split()) <= 3

    prediction_file = tmp_path / "out" / "predictions.json"
    squad_lib.write_predictions(
        examples,
        features,
        results,
        3,
        5,
        True,
        str(prediction_file),
        str(tmp_path / "out" / "nbest.json"),
    )
    assert json.loads(prediction_file.read_text()) == predictions
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "nbest.json",
        "predictions.json",
    ]


def test_squad_v2_null_answers_and_threshold(tmp_path, tokenizer):
    dev = squad_json(tmp_path / "dev.json", impossible=("q3",))
    examples = squad_lib.read_squad_examples(dev, True, version_2_with_negative=True)
    assert examples[2].is_impossible
    train_features = convert(examples, tokenizer, is_training=True)
    assert all(f.start_position == 0 and f.is_impossible for f in train_features[6:])
    features = convert(examples, tokenizer, is_training=False)
    ids = [f.unique_id for f in features]
    # Every window of q3 scores the null answer ([CLS]) highest; the least of those counts.
    results = logits_for(features, {ids[0]: (13, 13), **{i: (0, 0) for i in ids[6:]}})
    predictions, _, diffs = squad_lib.postprocess_output(
        examples, features, results, version_2_with_negative=True
    )
    assert predictions["q1"] == "Paris"
    assert predictions["q3"] == ""
    assert diffs["q3"] == pytest.approx(20.0)
    # A high threshold keeps the best non-null span.
    lenient, _, _ = squad_lib.postprocess_output(
        examples,
        features,
        results,
        version_2_with_negative=True,
        null_score_diff_threshold=diffs["q3"] + 1.0,
    )
    assert lenient["q3"] != ""


def test_final_text_projection():
    assert squad_lib.get_final_text("steve smith", "Steve Smith's", True) == "Steve Smith"
    assert squad_lib.get_final_text("1895", "(1895-1943).", True) == "1895"
    assert squad_lib.get_final_text("zurich", "Zürich,", True) == "Zürich"
    assert squad_lib.get_final_text("nothing", "Steve", True) == "Steve"


def test_malformed_squad_files_name_the_entry(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "paragraphs": [
                            {
                                "context": CONTEXT,
                                "qas": [{"id": "q1", "question": "?", "answers": []}, {"id": "q2"}],
                            }
                        ]
                    }
                ]
            }
        )
    )
    with pytest.raises(squad_lib.SquadFormatError, match=r"bad.json.*qas\[1\].*question"):
        squad_lib.read_squad_examples(str(path), False)
    with pytest.raises(squad_lib.SquadFormatError, match=r"qas\[0\].*'q1'.*0 answers"):
        squad_lib.read_squad_examples(str(path), True)
    path.write_text("{not json")
    with pytest.raises(squad_lib.SquadFormatError, match="bad.json: not valid JSON"):
        squad_lib.read_squad_examples(str(path), False)


def test_squad_lib_offers_model_gardens_names_from_the_stage_modules():
    from garden_nlp.data import squad_features, squad_postprocess, squad_reader

    # The names Model Garden's `official.nlp.data.squad_lib` offers that Garden implements.
    stages = {
        "SquadExample": squad_reader,
        "read_squad_examples": squad_reader,
        "InputFeatures": squad_features,
        "convert_examples_to_features": squad_features,
        "generate_tf_record_from_json_file": squad_features,
        "get_final_text": squad_postprocess,
        "postprocess_output": squad_postprocess,
        "write_predictions": squad_postprocess,
    }
    for name, module in stages.items():
        assert getattr(squad_lib, name) is getattr(module, name), name
