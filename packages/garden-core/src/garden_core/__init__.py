"""garden-core: the shared foundation of the Garden model garden.

garden-core is where the pieces every Garden model package needs will live: the typed `Config`
system with strict overrides and YAML round trips, the experiment framework
(`ExperimentConfig`, `Task`), the entry-point registries through which packages find
experiments, tasks and model builders, optimizers and learning-rate schedules, data helpers,
and the `garden` command line. It is being built up one piece at a time; for now it offers its
version.

Importing it stays cheap: it loads neither TensorFlow nor Keras at import time, so commands
such as `garden list` start fast, and it never imports garden-vision, garden-nlp or
garden-research, which build on it.
"""

from garden_core.__about__ import __version__

__all__ = ["__version__"]
