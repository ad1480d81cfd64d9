"""Experiments that ship with garden-core (registered through its `garden.experiments`)."""
