"""Tasks of garden-vision, registered in `garden.tasks` by their config class names."""
