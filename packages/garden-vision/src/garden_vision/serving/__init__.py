"""Export modules: serving signatures for garden-vision's tasks."""
