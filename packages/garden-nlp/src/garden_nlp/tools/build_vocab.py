"""Learns a WordPiece vocabulary or a SentencePiece model from text files.

The `garden-build-vocab` command. Input files are UTF-8 text, one sentence or paragraph a
line (comma-separated paths or globs, any filesystem `tf.io.gfile` reads).

- `--type=wordpiece` (the default) writes a BERT vocabulary file, one token a line, for
  `garden_nlp.text.BertTokenizer`: the reserved tokens first (`[PAD]`, `[UNK]`, `[CLS]`,
  `[SEP]`, `[MASK]` unless `--reserved_tokens` says otherwise), then single characters
  and their `##` suffix forms, then word pieces by frequency. Words are split as
  `BertTokenizer` splits them; TF.Text's WordPiece learner picks the pieces (its options
  keep their names here: `--lower_thresh`, `--upper_thresh`, `--num_iterations`,
  `--max_input_tokens`, `--max_token_length`, `--max_unique_chars`, `--slack_ratio`).
- `--type=sentencepiece` writes a SentencePiece `.model` file for
  `garden_nlp.text.SentencepieceTokenizer`, with ALBERT's special pieces `<pad>`, `<unk>`,
  `[CLS]`, `[SEP]`, `[MASK]` as ids 0 to 4. It needs the `sentencepiece` package:
  `pip install 'garden-nlp[sentencepiece]'`.

`--lower_case` makes an uncased vocabulary (lower-cased, accents stripped for WordPiece;
case folding built into the SentencePiece model). The output is written under a temporary
name and renamed into place, so an error never leaves a partial file. Bad input ends with a
one-line error naming what is wrong, and exit status 1.

Usage:

    garden-build-vocab --input_files=a.txt,b.txt --output_file=vocab.txt --vocab_size=30000 \\
        [--type=wordpiece|sentencepiece] [--lower_case]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

_PROG = "garden-build-vocab"
TYPES: tuple[str, ...] = ("wordpiece", "sentencepiece")
"""Values of `--type`."""

# Flags that apply to one --type only (default None: not given).
_WORDPIECE_FLAGS = (
    "reserved_tokens",
    "suffix_indicator",
    "lower_thresh",
    "upper_thresh",
    "num_iterations",
    "max_input_tokens",
    "max_token_length",
    "max_unique_chars",
    "slack_ratio",
)
_SENTENCEPIECE_FLAGS = ("model_type", "character_coverage", "input_sentence_size")


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "y", "on"):
        return True
    if value in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; got {text!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Learn a WordPiece vocabulary or a SentencePiece model from text files.",
    )
    parser.add_argument(
        "--input_files",
        required=True,
        help="Comma-separated text files or globs, one sentence or paragraph a line.",
    )
    parser.add_argument(
        "--output_file",
        required=True,
        help="The vocabulary file (wordpiece) or .model file (sentencepiece) to write.",
    )
    parser.add_argument(
        "--vocab_size",
        type=int,
        required=True,
        help="The number of tokens (wordpiece: at most; sentencepiece: exactly).",
    )
    parser.add_argument("--type", choices=TYPES, default="wordpiece", help="What to learn.")
    parser.add_argument(
        "--lower_case",
        type=_boolean,
        nargs="?",
        const=True,
        default=False,
        help="Make an uncased vocabulary (--lower_case, --lower_case=false, --nolower_case).",
    )
    parser.add_argument(
        "--nolower_case", dest="lower_case", action="store_false", help="Make a cased one."
    )
    wordpiece = parser.add_argument_group("wordpiece options")
    wordpiece.add_argument(
        "--reserved_tokens",
        default=None,
        help="Comma-separated tokens put first (default: [PAD],[UNK],[CLS],[SEP],[MASK]).",
    )
    wordpiece.add_argument("--suffix_indicator", default=None, help="Suffix prefix (##).")
    wordpiece.add_argument(
        "--lower_thresh", type=int, default=None, help="Lowest count tried (10)."
    )
    wordpiece.add_argument(
        "--upper_thresh", type=int, default=None, help="Highest count tried (10000000)."
    )
    wordpiece.add_argument("--num_iterations", type=int, default=None, help="Learning rounds (4).")
    wordpiece.add_argument(
        "--max_input_tokens", type=int, default=None, help="Most frequent words used (5000000)."
    )
    wordpiece.add_argument(
        "--max_token_length", type=int, default=None, help="Longest word counted (50)."
    )
    wordpiece.add_argument(
        "--max_unique_chars", type=int, default=None, help="Largest alphabet (1000)."
    )
    wordpiece.add_argument(
        "--slack_ratio", type=float, default=None, help="How far below --vocab_size (0.05)."
    )
    sentencepiece = parser.add_argument_group("sentencepiece options")
    sentencepiece.add_argument(
        "--model_type", default=None, help="unigram (default), bpe, char or word."
    )
    sentencepiece.add_argument(
        "--character_coverage", type=float, default=None, help="Characters covered (0.9995)."
    )
    sentencepiece.add_argument(
        "--input_sentence_size", type=int, default=None, help="Lines sampled (0: all)."
    )
    return parser


def _options(args: argparse.Namespace, names: Sequence[str]) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def build(args: argparse.Namespace) -> str:
    """Learns and writes what `args` asks for; returns a one-line summary.

    Raises:
        ValueError, FileNotFoundError, ImportError, OSError, tf.errors.OpError: On bad
            input or output.
    """
    from garden_nlp.text import vocab

    wrong = _SENTENCEPIECE_FLAGS if args.type == "wordpiece" else _WORDPIECE_FLAGS
    given = [f"--{name}" for name in wrong if getattr(args, name) is not None]
    if given:
        other = "sentencepiece" if args.type == "wordpiece" else "wordpiece"
        raise ValueError(f"{', '.join(given)} apply to --type={other} only")
    if args.vocab_size < 1:
        raise ValueError(f"--vocab_size must be positive; got {args.vocab_size}")
    casing = "uncased" if args.lower_case else "cased"
    if args.type == "wordpiece":
        options = _options(args, _WORDPIECE_FLAGS)
        if "reserved_tokens" in options:
            options["reserved_tokens"] = [
                token.strip() for token in options["reserved_tokens"].split(",") if token.strip()
            ]
        tokens = vocab.learn_wordpiece_vocab(
            args.input_files, args.vocab_size, lower_case=args.lower_case, **options
        )
        vocab.write_vocab_file(args.output_file, tokens)
        return (
            f"wrote {len(tokens)} WordPiece tokens ({casing}; --vocab_size {args.vocab_size}) "
            f"to {args.output_file}"
        )
    options = _options(args, _SENTENCEPIECE_FLAGS)
    model = vocab.learn_sentencepiece_model(
        args.input_files, args.vocab_size, lower_case=args.lower_case, **options
    )
    vocab.write_bytes_atomically(args.output_file, model)
    return (
        f"wrote a SentencePiece model of {args.vocab_size} pieces ({casing}) to {args.output_file}"
    )


def _one_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 on success, 1 on bad input).

    Args:
        argv: The arguments without the program name; None reads `sys.argv[1:]`. Usage
            errors exit through argparse with status 2, as usual.

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    import tensorflow as tf

    try:
        summary = build(args)
    except (ValueError, FileNotFoundError, ImportError, OSError, tf.errors.OpError) as error:
        print(f"{_PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def run() -> int:
    """The `garden-build-vocab` console command: `main` on `sys.argv`."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
