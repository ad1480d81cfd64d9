"""garden-core: the shared foundation of the Garden model garden.

garden-core holds the pieces every Garden model package needs: the typed `Config` system
with strict overrides and YAML round trips (`garden_core.config`), the experiment runtime
(`base_task.Task`, `base_trainer.Trainer`, `train_lib.run_experiment`, `export_base`), the
entry-point registries through which packages find experiments, tasks and model builders
(`garden_core.registry`), optimizers, learning-rate schedules and EMA
(`garden_core.optimization`), input pipelines (`garden_core.data`), distribution
(`garden_core.distribute_utils`) and the `garden` command line.

Importing it stays cheap: it loads neither TensorFlow nor Keras at import time, so commands
such as `garden list` start fast, and it never imports garden-vision, garden-nlp or
garden-research, which build on it.
"""

from garden_core.__about__ import __version__

__all__ = ["__version__"]
