"""Export modules of the NLP tasks: serving over token ids or raw strings."""
