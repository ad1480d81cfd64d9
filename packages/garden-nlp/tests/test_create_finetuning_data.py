"""`garden-create-finetuning-data`: TSV, SQuAD JSON and CoNLL files into loader-ready TFRecords."""

from __future__ import annotations

import json

import numpy as np

from garden_nlp.configs.data import (
    QADataConfig,
    SentencePredictionDataConfig,
    SentencePredictionTextDataConfig,
    TaggingDataConfig,
)
from garden_nlp.data.question_answering_dataloader import QuestionAnsweringDataLoader
from garden_nlp.data.sentence_prediction_dataloader import (
    SentencePredictionDataLoader,
    SentencePredictionTextDataLoader,
)
from garden_nlp.data.tagging_dataloader import TaggingDataLoader
from garden_nlp.tools import create_finetuning_data

VOCAB = [
    *["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    *["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "big", "red", "who", "?", "."],
]


def test_converted_files_feed_the_loaders(tmp_path, capsys):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"{token}\n" for token in VOCAB))
    common = [f"--vocab_file={vocab}", "--max_seq_length=8"]

    # Classification: the TFRecord features equal the raw-text pipeline's packing.
    tsv = tmp_path / "train.tsv"
    tsv.write_text("a\tb\tlabel\nthe big cat sat\ton a red mat\tyes\nthe dog\tran\tno\n")
    output = str(tmp_path / "train.tfrecord")
    meta_file = tmp_path / "meta.json"
    argv = [
        "--task_type=classification",
        f"--input_file={tsv}",
        f"--output_file={output}",
        "--text_fields=a,b",
        "--label_list=no,yes",
        f"--meta_data_file_path={meta_file}",
        *common,
    ]
    assert create_finetuning_data.main(argv) == 0
    assert "wrote 2 classification records" in capsys.readouterr().out
    meta = json.loads(meta_file.read_text())
    assert meta["train_data_size"] == 2
    assert meta["label_list"] == ["no", "yes"]
    read = {"global_batch_size": 2, "is_training": False, "seq_length": 8}
    features, labels = next(
        iter(
            SentencePredictionDataLoader(
                SentencePredictionDataConfig(input_path=output, **read)
            ).load()
        )
    )
    np.testing.assert_array_equal(labels, [1, 0])
    text_params = SentencePredictionTextDataConfig(
        input_path=str(tsv),
        file_type="tsv",
        text_fields=["a", "b"],
        label_list=["no", "yes"],
        vocab_file=str(vocab),
        **read,
    )
    text_features, _ = next(iter(SentencePredictionTextDataLoader(text_params).load()))
    for name in ("input_word_ids", "input_mask", "input_type_ids"):
        np.testing.assert_array_equal(features[name], text_features[name])

    # SQuAD training features.
    context = "the big cat sat on a red mat ."
    squad = tmp_path / "train.json"
    qa = {"id": "q", "question": "who sat ?", "answers": [{"text": "cat", "answer_start": 8}]}
    squad.write_text(json.dumps({"data": [{"paragraphs": [{"context": context, "qas": [qa]}]}]}))
    squad_output = str(tmp_path / "squad.tfrecord")
    argv = ["--task_type=squad", f"--input_file={squad}", f"--output_file={squad_output}"]
    assert (
        create_finetuning_data.main([*argv, *common, "--doc_stride=2", "--max_query_length=3"]) == 0
    )
    # Windows of 2 context tokens (8 - 3 question - 3 specials), stride 2: 5 of them.
    params = QADataConfig(input_path=squad_output, **read)
    params = params.replace(is_training=True, global_batch_size=5, shuffle_buffer_size=1)
    features, labels = next(iter(QuestionAnsweringDataLoader(params).load()))
    np.testing.assert_array_equal(labels["start_positions"], [0, 5, 0, 0, 0])
    np.testing.assert_array_equal(labels["end_positions"], [0, 5, 0, 0, 0])
    assert VOCAB[int(features["input_word_ids"][1, 5])] == "cat"

    # Tagging.
    conll = tmp_path / "train.conll"
    conll.write_text("the O\ncat B-ANIMAL\n\ndog B-ANIMAL\nran O\n")
    tag_output = str(tmp_path / "tags.tfrecord")
    argv = ["--task_type=tagging", f"--input_file={conll}", f"--output_file={tag_output}"]
    assert create_finetuning_data.main([*argv, *common, "--label_list=O,B-ANIMAL"]) == 0
    _, labels = next(
        iter(TaggingDataLoader(TaggingDataConfig(input_path=tag_output, **read)).load())
    )
    np.testing.assert_array_equal(labels[0], [-1, 0, 1, -1, -1, -1, -1, -1])

    # Bad input: one line naming the file and column, exit status 1, nothing written.
    argv = ["--task_type=classification", f"--input_file={tsv}", "--text_fields=a,question"]
    missing = str(tmp_path / "missing.tfrecord")
    assert create_finetuning_data.main([*argv, f"--output_file={missing}", *common]) == 1
    error = capsys.readouterr().err
    assert "train.tsv has no column 'question'" in error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "missing.tfrecord").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
