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
the packed ids (`--ids_file` also saves them, as one int32 array per feature in an `.npz`).

- `--impl garden`: `garden_nlp.text.BertTokenizer` + `BertPackInputs` (Keras 3, TF 2.21;
  tf-text's `FastBertTokenizer`, FastWordpiece, for the standard uncased options).
- `--impl official_fast`: Model Garden's fast path, `official.nlp.modeling.layers.
  FastWordpieceBertTokenizer` + `BertPackInputs` (tf-models-official, tf_keras).
- `--impl official`: Model Garden's `BertTokenizer` (tf-text's `BertTokenizer`, the slow
  WordPiece path) + `BertPackInputs`.

The generated data: a vocabulary of about 30,000 tokens (the five special tokens,
punctuation, letters, about 18,000 words and 11,000 `##` suffix pieces made of
syllables) and 20,000 sentences of 10 to 40 words: 70 % vocabulary words, 20 % words made of
a word and one or two suffix pieces (WordPiece splits them), 10 % random letter strings
(split into many pieces), some capitalized, some punctuation. `--compare_with` writes it
once, then runs Garden, Model Garden's fast path and Model Garden's slow path in fresh
processes, alternating, and prints medians, spreads and the Garden / Model Garden ratios;
fast against fast is the headline. It fails (exit status 1, naming the side, the number of
sentences that differ and the first of them) unless every side packs exactly Garden's ids.
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


_FEATURES = ("input_word_ids", "input_mask", "input_type_ids")


def measure(
    impl: str,
    data_dir: str,
    batch_size: int,
    seq_length: int,
    passes: int,
    ids_file: str | None = None,
) -> dict:
    """Runs the pipeline once to warm up, then `passes` times; returns the record.

    Args:
      impl: One of `IMPLS`.
      data_dir: Holds `vocab.txt` and `corpus.txt`.
      batch_size: Sentences per batch.
      seq_length: The packer's sequence length.
      passes: Timed passes over the corpus.
      ids_file: If set, the packed features of the warm-up pass are saved there (`.npz`).
    """
    import numpy as np
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
    produced: dict[str, list] = {key: [] for key in _FEATURES}
    for features in dataset:  # Warm-up: tracing; also a digest of what is produced.
        for key in _FEATURES:
            values = features[key].numpy().astype("<i4")
            digest.update(values.tobytes())
            if ids_file:
                produced[key].append(values)
        tokens += int(features["input_mask"].numpy().sum())
    if ids_file:
        np.savez(ids_file, **{key: np.concatenate(produced[key]) for key in _FEATURES})
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


_LABELS = {
    "garden": "garden-nlp `BertTokenizer` (FastWordpiece)",
    "official_fast": "Model Garden `FastWordpieceBertTokenizer` (fast path)",
    "official": "Model Garden `BertTokenizer` (slow path)",
}


def _run_side(
    python: str, impl: str, args: argparse.Namespace, data_dir: str, ids_file: str | None
) -> dict:
    command = [python, os.path.abspath(__file__), "--impl", impl, "--json", "--data_dir", data_dir]
    command += ["--batch_size", str(args.batch_size), "--seq_length", str(args.seq_length)]
    command += ["--passes", str(args.passes)]
    if ids_file:
        command += ["--ids_file", ids_file]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(
            f"nlp_tokenizer_bench.py: side {impl!r} ({python}) failed with exit status "
            f"{result.returncode}:\n{result.stderr[-3000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_same_ids(data_dir: str, ids_files: dict[str, str]) -> list[str]:
    """Compares every side's packed ids with Garden's; returns one message per differing side.

    Args:
      data_dir: Holds `corpus.txt`, to quote the first sentence that differs.
      ids_files: Side name to its `.npz` of packed features; must include `garden`.
    """
    import numpy as np

    with open(os.path.join(data_dir, "corpus.txt"), encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    reference = np.load(ids_files["garden"])
    problems = []
    for impl, path in ids_files.items():
        if impl == "garden":
            continue
        other = np.load(path)
        for key in _FEATURES:
            want, got = reference[key], other[key]
            if want.shape != got.shape:
                problems.append(
                    f"{impl}: {key} has shape {got.shape}, garden's has shape {want.shape}"
                )
                continue
            rows = np.flatnonzero(np.any(want != got, axis=1))
            if rows.size:
                first = int(rows[0])
                columns = np.flatnonzero(want[first] != got[first])
                problems.append(
                    f"{impl}: {key} differs from garden's in {rows.size} of {len(want)} "
                    f"sentences; first sentence {first}: {lines[first]!r}\n"
                    f"  positions {columns[:10].tolist()}: garden "
                    f"{want[first][columns[:10]].tolist()}, {impl} "
                    f"{got[first][columns[:10]].tolist()}"
                )
    return problems


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def compare(args: argparse.Namespace) -> None:
    """Runs Garden (this interpreter) and both Model Garden paths (`--compare_with`).

    Sides alternate within each repeat, so all see the same machine load. The first repeat
    also saves every side's packed ids; any side whose ids differ from Garden's ends the
    benchmark with exit status 1.
    """
    sides = {"garden": sys.executable, "official_fast": args.compare_with}
    if not args.skip_slow:
        sides["official"] = args.compare_with
    records: dict[str, list[dict]] = {impl: [] for impl in sides}
    with tempfile.TemporaryDirectory() as data_dir:
        make_data(data_dir, num_sentences=args.sentences)
        ids_files = {impl: os.path.join(data_dir, f"ids_{impl}.npz") for impl in sides}
        for repeat in range(args.repeats):
            for impl, python in sides.items():
                ids_file = ids_files[impl] if repeat == 0 else None
                record = _run_side(python, impl, args, data_dir, ids_file)
                records[impl].append(record)
                print(
                    f"run {repeat + 1} {impl}: {record['sentences_per_s']:.0f} sentences/s, "
                    f"{record['sentences_per_cpu_s']:.0f} per CPU-second",
                    file=sys.stderr,
                    flush=True,
                )
            if repeat == 0:
                problems = check_same_ids(data_dir, ids_files)
                if problems:
                    sys.exit(
                        "nlp_tokenizer_bench.py: FAILED, the sides pack different ids "
                        "(same vocabulary, sentences and packing), so their speeds cannot be "
                        "compared:\n" + "\n".join(problems)
                    )
    checksums = {impl: {r["checksum"] for r in side} for impl, side in records.items()}
    if any(c != checksums["garden"] or len(c) != 1 for c in checksums.values()):
        sys.exit(f"nlp_tokenizer_bench.py: FAILED, packed-id checksums differ: {checksums}")
    garden = records["garden"][0]
    print(
        f"Raw sentences to packed BERT inputs: {garden['sentences']:,} sentences, batch "
        f"{args.batch_size}, seq_length {args.seq_length}, {args.passes} timed passes a run, "
        f"{args.repeats} runs a side, alternating; medians (min–max). tensorflow-text: "
        + ", ".join(f"{impl} {records[impl][0]['tensorflow_text']}" for impl in sides)
    )
    print()
    print("| tokenizer + `BertPackInputs` | sentences/s | sentences per CPU-second "
          "| Garden / this, wall | Garden / this, CPU |")  # fmt: skip
    print("|---|---|---|---|---|")
    medians = {
        impl: {key: statistics.median(r[key] for r in side) for key in
               ("sentences_per_s", "sentences_per_cpu_s")}
        for impl, side in records.items()
    }  # fmt: skip
    for impl, side in records.items():
        wall = [r["sentences_per_s"] for r in side]
        cpu = [r["sentences_per_cpu_s"] for r in side]
        ratios = " | ".join(
            f"{medians['garden'][key] / medians[impl][key]:.2f}x"
            for key in ("sentences_per_s", "sentences_per_cpu_s")
        )
        if impl == "garden":
            ratios = "– | –"
        print(f"| {_LABELS[impl]} | {_cell(wall)} | {_cell(cpu)} | {ratios} |")
    print(
        f"\nPacked ids (input_word_ids, input_mask, input_type_ids) identical to Garden's on "
        f"every side: yes (checksum {garden['checksum']}, "
        f"{garden['packed_tokens_per_sentence']:.1f} packed tokens per sentence)"
    )


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
    parser.add_argument("--ids_file", help="Also save the packed ids to this .npz file.")
    parser.add_argument(
        "--skip_slow", action="store_true", help="Compare leaves out Model Garden's slow path."
    )
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
        record = measure(
            args.impl, data_dir, args.batch_size, args.seq_length, args.passes, args.ids_file
        )
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
