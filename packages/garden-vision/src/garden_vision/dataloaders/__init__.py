"""Input pipelines: record decoders and parsers that turn decoded records into model inputs."""
