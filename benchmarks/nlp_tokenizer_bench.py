"""Tokenization throughput of garden-nlp's text layers, side by side with tf-models-official.

One script runs on either side, in that side's own environment, and also drives both:

    python benchmarks/nlp_tokenizer_bench.py                      # Garden, generated data
    python benchmarks/nlp_tokenizer_bench.py --impl official --json --data_dir DIR
    python benchmarks/nlp_tokenizer_bench.py --make_data DIR      # vocab.txt + corpus.txt
    python benchmarks/nlp_tokenizer_bench.py --compare_with TFM_PYTHON [--repeats 3]

What is measured: raw sentences -> BERT model inputs, the way a fine-tuning input pipeline
or a serving preprocessor runs it. A `tf.data` pipeline over the corpus in memory,
`batch(256)`, `map(packer(tokenizer(batch)))` with parallel calls, `prefetch`; the tokenizer
is each library's `BertTokenizer` over the same uncased WordPiece vocabulary and the packer
its `BertPackInputs(seq_length=128)`. After one warm-up pass (tracing), `--passes` timed
passes; the script reports sentences per second of wall time and per CPU-second (process
CPU time of all threads, which other load on the machine hardly moves), and a checksum of
the packed ids so both sides can be seen to produce the same inputs.

- `--impl garden`: `garden_nlp.text.BertTokenizer` + `BertPackInputs` (Keras 3, TF 2.21).
- `--impl official`: `official.nlp.modeling.layers.BertTokenizer` + `BertPackInputs`
  (tf-models-official, tf_keras).
- `--impl official_fast`: Model Garden's `FastWordpieceBertTokenizer` + `BertPackInputs`.

The generated data: a vocabulary of about 30,000 tokens (the five special tokens,
punctuation, letters, about 18,000 words and 11,000 `##` suffix pieces made of
syllables) and 20,000 sentences of 10 to 40 words: 70 % vocabulary words, 20 % words made of
a word and one or two suffix pieces (WordPiece splits them), 10 % random letter strings
(split into many pieces), some capitalized, some punctuation. `--compare_with` writes it
once, then runs each side in fresh processes, alternating, and prints medians and the
Garden / Model Garden ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

IMPLS = ("garden", "official", "official_fast")
_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_PUNCTUATION = list(".,;:!?'\"()-")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


# Data.


def make_data(
    directory: str, num_sentences: int = 20000, num_words: int = 18000, seed: int = 0
) -> dict:
    """Writes `vocab.txt` (uncased WordPiece) and `corpus.txt` (one sentence a line)."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + list("aeiou")

    def word(num_syllables: int) -> str:
        return "".join(rng.choice(syllables) for _ in range(num_syllables))

    words: set[str] = set()
    while len(words) < num_words:
        words.add(word(rng.randint(1, 4)))
    suffixes: set[str] = set()
    while len(suffixes) < num_words * 11 // 18:
        suffixes.add(word(rng.randint(1, 3)))
    word_list, suffix_list = sorted(words), sorted(suffixes)
    vocab = list(
        dict.fromkeys(
            [*_SPECIAL, *_PUNCTUATION, *_LETTERS]
            + ["##" + c for c in _LETTERS]
            + word_list
            + ["##" + s for s in suffix_list]
        )
    )
    lines = []
    for _ in range(num_sentences):
        sentence = []
        for _ in range(rng.randint(10, 40)):
            draw = rng.random()
            if draw < 0.7:
                token = rng.choice(word_list)
            elif draw < 0.9:
                token = rng.choice(word_list) + rng.choice(suffix_list)
                if rng.random() < 0.3:
                    token += rng.choice(suffix_list)
            else:
                token = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(3, 9)))
            if rng.random() < 0.1:
                token = token.capitalize()
            sentence.append(token)
            if rng.random() < 0.08:
                sentence.append(rng.choice(_PUNCTUATION))
        lines.append(" ".join(sentence))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in vocab))
    with open(os.path.join(directory, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))
    return {"what": "make_data", "directory": directory, "vocab_size": len(vocab),
            "sentences": len(lines)}  # fmt: skip


# The layers of each library.


def _layers(impl: str, vocab_file: str, seq_length: int):
    if impl == "garden":
        from garden_nlp.text import BertPackInputs, BertTokenizer

        tokenizer = BertTokenizer(vocab_file=vocab_file, lower_case=True)
    else:
        from official.nlp.modeling.layers import text_layers

        BertPackInputs = text_layers.BertPackInputs  # noqa: N806
        if impl == "official":
            tokenizer = text_layers.BertTokenizer(vocab_file=vocab_file, lower_case=True)
        else:
            tokenizer = text_layers.FastWordpieceBertTokenizer(
                vocab_file=vocab_file, lower_case=True
            )
    packer = BertPackInputs(seq_length, special_tokens_dict=tokenizer.get_special_tokens_dict())
    return tokenizer, packer


def measure(impl: str, data_dir: str, batch_size: int, seq_length: int, passes: int) -> dict:
    """Runs the pipeline once to warm up, then `passes` times; returns the record."""
    import tensorflow as tf

    with open(os.path.join(data_dir, "corpus.txt"), encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    tokenizer, packer = _layers(impl, os.path.join(data_dir, "vocab.txt"), seq_length)
    dataset = (
        tf.data.Dataset.from_tensor_slices(lines)
        .batch(batch_size)
        .map(lambda text: packer(tokenizer(text)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    digest = hashlib.sha256()
    tokens = 0
    for features in dataset:  # Warm-up: tracing; also a digest of what is produced.
        for key in ("input_word_ids", "input_mask", "input_type_ids"):
            digest.update(features[key].numpy().astype("<i4").tobytes())
        tokens += int(features["input_mask"].numpy().sum())
    rates = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(passes):
        pass_start = time.perf_counter()
        for _ in dataset:
            pass
        rates.append(len(lines) / (time.perf_counter() - pass_start))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    import tensorflow_text

    return {
        "what": "tokenize_and_pack",
        "impl": impl,
        "sentences_per_s": passes * len(lines) / elapsed,
        "sentences_per_cpu_s": passes * len(lines) / cpu,
        "best_pass_sentences_per_s": max(rates),
        "sentences": len(lines),
        "passes": passes,
        "batch_size": batch_size,
        "seq_length": seq_length,
        "packed_tokens_per_sentence": tokens / len(lines),
        "checksum": digest.hexdigest()[:16],
        "tensorflow": tf.__version__,
        "tensorflow_text": tensorflow_text.__version__,
        "fast_bert_tokenizer": bool(getattr(tokenizer, "uses_fast_bert_tokenizer", False)),
    }


# Both sides.


def _run_side(python: str, impl: str, args: argparse.Namespace, data_dir: str) -> dict:
    command = [python, os.path.abspath(__file__), "--impl", impl, "--json", "--data_dir", data_dir]
    command += ["--batch_size", str(args.batch_size), "--seq_length", str(args.seq_length)]
    command += ["--passes", str(args.passes)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> None:
    """Runs Garden (this interpreter) and Model Garden (`--compare_with`) alternately."""
    sides = {"garden": sys.executable, "official": args.compare_with}
    records: dict[str, list[dict]] = {impl: [] for impl in sides}
    with tempfile.TemporaryDirectory() as data_dir:
        make_data(data_dir, num_sentences=args.sentences)
        for _ in range(args.repeats):
            for impl, python in sides.items():
                records[impl].append(_run_side(python, impl, args, data_dir))
    same = len({record["checksum"] for side in records.values() for record in side}) == 1
    print(
        f"| measurement (batch {args.batch_size}, seq_length {args.seq_length}) "
        "| garden-nlp | tf-models-official | Garden / Model Garden |"
    )
    print("|---|---|---|---|")
    for key, label in (
        ("sentences_per_s", "BertTokenizer + BertPackInputs, sentences/s"),
        ("sentences_per_cpu_s", "BertTokenizer + BertPackInputs, sentences per CPU-second"),
    ):
        garden = statistics.median(r[key] for r in records["garden"])
        official = statistics.median(r[key] for r in records["official"])
        print(f"| {label} | {garden:.0f} | {official:.0f} | {garden / official:.2f}x |")
    print(f"\nIdentical packed inputs on both sides: {'yes' if same else 'NO'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=IMPLS, default="garden")
    parser.add_argument("--json", action="store_true", help="Print one JSON line.")
    parser.add_argument("--data_dir", help="vocab.txt + corpus.txt (default: generated).")
    parser.add_argument("--make_data", metavar="DIR", help="Only write the data to DIR.")
    parser.add_argument("--compare_with", metavar="PYTHON", help="tf-models-official python.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per side to compare.")
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--passes", type=int, default=3, help="Timed passes over the corpus.")
    args = parser.parse_args(argv)
    if args.make_data:
        print(json.dumps(make_data(args.make_data, num_sentences=args.sentences)))
        return
    if args.compare_with:
        compare(args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = scratch
            make_data(data_dir, num_sentences=args.sentences)
        record = measure(args.impl, data_dir, args.batch_size, args.seq_length, args.passes)
    if args.json:
        print(json.dumps(record), flush=True)
    else:
        print(
            f"{record['impl']}: {record['sentences_per_s']:.0f} sentences/s, "
            f"{record['sentences_per_cpu_s']:.0f} sentences per CPU-second "
            f"({record['sentences']} sentences x {record['passes']} passes, batch "
            f"{record['batch_size']}, seq_length {record['seq_length']}, "
            f"{record['packed_tokens_per_sentence']:.1f} packed tokens per sentence)"
        )


if __name__ == "__main__":
    main()
