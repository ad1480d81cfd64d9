"""Finds the `Task` class of a task config through the `garden.tasks` registry.

A task registers under the class name of its config:

    [project.entry-points."garden.tasks"]
    ImageClassificationTask = "garden_vision.tasks.image_classification:ImageClassificationTask"

or in-process with `registry.tasks.register("MyTaskConfig", MyTask)`.
"""

from __future__ import annotations

from garden_core import registry
from garden_core.base_task import Task
from garden_core.config import ConfigError
from garden_core.config.definitions import TaskConfig


def get_task_class(task_config: TaskConfig) -> type[Task]:
    """Returns the `Task` subclass registered for the class of `task_config`.

    Raises:
      ConfigError: If `task_config` is a plain `TaskConfig`, or its class has no task.
    """
    name = type(task_config).__name__
    if type(task_config) is TaskConfig:
        raise ConfigError(
            "`task` is a plain TaskConfig, which names no task; an experiment's task config "
            "must be a registered TaskConfig subclass (see `garden list tasks`)"
        )
    try:
        task_class = registry.tasks.get(name)
    except registry.RegistryError as error:
        raise ConfigError(f"no task is registered for task config {name}: {error}") from None
    if not (isinstance(task_class, type) and issubclass(task_class, Task)):
        raise ConfigError(
            f"task `{name}` is registered as {task_class!r}, which is not a Task subclass"
        )
    return task_class


def get_task(task_config: TaskConfig, logging_dir: str | None = None) -> Task:
    """Builds the task of `task_config` (see `get_task_class`)."""
    return get_task_class(task_config)(task_config, logging_dir=logging_dir)
