"""garden-nlp command-line tools: vocabularies, fine-tuning data and checkpoint converters."""
