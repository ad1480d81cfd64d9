"""The modes of `run_experiment` and `garden train` (kept apart so the CLI parses flags
without importing TensorFlow)."""

MODES = ("train", "eval", "train_and_eval", "continuous_eval", "train_and_post_eval")
