"""Datasets garden-nlp generates itself, for examples, tests and quick experiments."""
