"""garden-research: community research models that plug into Garden.

garden-research will collect research projects built on garden-core, garden-vision and
garden-nlp, each a sub-package that registers its experiments through entry points, so that
after `pip install` they appear in `garden list` and run with `garden train`. It also serves as
the worked example of how a third-party package publishes experiments. It is being built up
one piece at a time; for now it offers its version.
"""

from garden_research.__about__ import __version__

__all__ = ["__version__"]
