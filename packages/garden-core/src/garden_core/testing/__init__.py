"""Shared test helpers for Garden packages and for the research packages that plug in.

- `garden_core.testing.models`: the shared model checks (output shapes, config, checkpoint,
  SavedModel and `.keras` round trips, a train step reaching every variable, mixed
  precision) that every package's model tests and the research packages run.
- `garden_core.testing.plugins`: temporary plugin distributions (a `*.dist-info` folder
  with entry points, plus its module) and running Python against them in a fresh
  interpreter, so a test controls exactly which providers exist.
- `garden_core.testing.model_garden_api`: checks that a package offers Model Garden's public
  import paths for the names it implements, against fixtures dumped from tf-models-official.
- `garden_core.testing.model_garden_configs`: checks that Model Garden's own experiment YAML
  loads into a package's experiments of the same names, which come from the registry and
  the list of experiments tf-models-official 2.20 registers (`data/`).

Nothing here is imported by `import garden_core`.
"""
