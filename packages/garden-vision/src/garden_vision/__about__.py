"""Version of the garden-vision distribution (read by hatchling at build time)."""

__version__ = "0.1.0"
