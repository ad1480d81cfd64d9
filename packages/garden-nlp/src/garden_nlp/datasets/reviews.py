"""`garden_reviews`: a generated sentiment dataset that a tiny BERT learns on a CPU in minutes.

Each example is a short review sentence and its sentiment (1 positive, 0 negative), such as
"the soup was not very tasty , sadly" (0) or "honestly our waiter seemed really friendly" (1).
Sentiment comes from the adjective, flipped by a negation (`not`, `never`, `hardly`), so
counting positive and negative words is not enough: a model has to read the adjective in
the context of its negation, which is what self-attention is for. Both classes are equally
frequent; chance accuracy is 50 %.

`prepare(directory)` writes, once and atomically:

    train.tsv        8000 examples    header: sentence<TAB>label
    validation.tsv   1000 examples
    vocab.txt        a WordPiece vocabulary ([PAD], [UNK], [CLS], [SEP], [MASK], words)

The data is the same on every machine (a fixed seed); nothing is downloaded. The default
directory is `$GARDEN_DATA_DIR/garden_reviews/1.0.0`, with `GARDEN_DATA_DIR` defaulting to
`~/.cache/garden/datasets`.
"""

from __future__ import annotations

import os
import random
import shutil

NAME = "garden_reviews"
VERSION = "1.0.0"
TRAIN_EXAMPLES = 8000
VALIDATION_EXAMPLES = 1000
SPLITS = {"train": TRAIN_EXAMPLES, "validation": VALIDATION_EXAMPLES}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_OPENINGS = ("", "", "", "honestly", "overall", "i think", "sadly", "luckily", "well")
_DETERMINERS = ("the", "this", "that", "our", "my", "their")
_NOUNS = (
    "food", "soup", "pasta", "service", "waiter", "room", "view", "movie", "plot", "book",
    "ending", "music", "staff", "hotel", "coffee", "dessert", "price", "seat", "show", "game",
)  # fmt: skip
_VERBS = ("was", "is", "seemed", "felt", "looked", "sounded")
_INTENSIFIERS = ("", "", "very", "really", "quite", "so", "truly", "rather")
_NEGATIONS = ("not", "never", "hardly")
_POSITIVE = (
    "good", "great", "tasty", "friendly", "lovely", "excellent", "fun", "clean", "perfect",
    "amazing", "fresh", "nice", "pleasant", "wonderful", "charming", "superb",
)  # fmt: skip
_NEGATIVE = (
    "bad", "awful", "bland", "rude", "boring", "dirty", "terrible", "slow", "poor", "cold",
    "noisy", "dull", "stale", "horrible", "weak", "messy",
)  # fmt: skip
_ENDINGS = ("", "", "", ", sadly", ", as always", "today", "to be honest", "at all", "again")


def default_directory() -> str:
    """Where `prepare` writes by default: `$GARDEN_DATA_DIR/garden_reviews/<version>`."""
    root = os.environ.get("GARDEN_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "garden", "datasets"
    )
    return os.path.join(root, NAME, VERSION)


def paths(directory: str | None = None) -> dict[str, str]:
    """The dataset's files: `train`, `validation` (TSV) and `vocab` (WordPiece vocabulary)."""
    directory = directory or default_directory()
    return {
        "train": os.path.join(directory, "train.tsv"),
        "validation": os.path.join(directory, "validation.tsv"),
        "vocab": os.path.join(directory, "vocab.txt"),
    }


def vocabulary() -> list[str]:
    """The WordPiece vocabulary: special tokens, every word used, and a few suffix pieces."""
    words: list[str] = []
    for group in (
        _OPENINGS, _DETERMINERS, _NOUNS, _VERBS, _INTENSIFIERS, _NEGATIONS, _POSITIVE,
        _NEGATIVE, _ENDINGS,
    ):  # fmt: skip
        for phrase in group:
            for word in phrase.replace(",", " , ").split():
                if word not in words:
                    words.append(word)
    # Suffix pieces let WordPiece split words outside the dataset instead of mapping them to
    # [UNK] (e.g. "goodness" -> "good", "##ness").
    pieces = ["##s", "##ly", "##ness", "##er", "##est", "##ed", "##ing", "##y"]
    return [*SPECIAL_TOKENS, *words, *pieces]


def example(rng: random.Random) -> tuple[str, int]:
    """One review sentence and its label (1 positive, 0 negative)."""
    positive = rng.random() < 0.5
    negated = rng.random() < 0.5
    adjective = rng.choice(_POSITIVE if positive else _NEGATIVE)
    words = [
        rng.choice(_OPENINGS),
        rng.choice(_DETERMINERS),
        rng.choice(_NOUNS),
        rng.choice(_VERBS),
        rng.choice(_NEGATIONS) if negated else "",
        rng.choice(_INTENSIFIERS),
        adjective,
        rng.choice(_ENDINGS),
    ]
    sentence = " ".join(w for w in words if w)
    return sentence, int(positive != negated)


def examples(split: str, seed: int = 0) -> list[tuple[str, int]]:
    """The examples of `split` (`train` or `validation`), the same on every call."""
    if split not in SPLITS:
        raise ValueError(f"{NAME} has no split {split!r}; expected one of {', '.join(SPLITS)}")
    rng = random.Random(f"{NAME}/{VERSION}/{split}/{seed}")
    return [example(rng) for _ in range(SPLITS[split])]


def prepare(directory: str | None = None) -> dict[str, str]:
    """Writes the dataset into `directory` unless it is already there; returns `paths`.

    The files are written into a temporary directory beside `directory` and moved into
    place together, so an interrupted run never leaves a partial dataset behind.
    """
    directory = directory or default_directory()
    files = paths(directory)
    if all(os.path.exists(path) for path in files.values()):
        return files
    from garden_orbit.utils import atomic_write  # Imports TensorFlow: only when writing.

    if os.path.isdir(directory):  # A partial directory from an older, non-atomic writer.
        shutil.rmtree(directory)
    try:
        with atomic_write.atomic_directory(directory) as staging:
            os.makedirs(staging)
            for split in SPLITS:
                with open(os.path.join(staging, f"{split}.tsv"), "w", encoding="utf-8") as f:
                    f.write("sentence\tlabel\n")
                    for sentence, label in examples(split):
                        f.write(f"{sentence}\t{label}\n")
            with open(os.path.join(staging, "vocab.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(vocabulary()) + "\n")
    except FileExistsError:
        # Another process prepared it first; keep theirs if it is complete.
        if not all(os.path.exists(path) for path in files.values()):
            raise
    return files
