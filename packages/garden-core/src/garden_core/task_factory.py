"""Finds and builds the `Task` of a task config through the `garden.tasks` registry.

A task registers under the class name of its config:

    [project.entry-points."garden.tasks"]
    ImageClassificationTask = "garden_vision.tasks.image_classification:ImageClassificationTask"

or in-process with `registry.tasks.register("MyTaskConfig", MyTask)`. It is resolved like
every other kind (`garden_core.plugins.load`) and called as
`TaskClass(task_config, logging_dir=...)`.
"""

from __future__ import annotations

from garden_core import plugins
from garden_core.base_task import Task
from garden_core.config import ConfigError
from garden_core.config.definitions import TaskConfig


def get_task_class(task_config: TaskConfig) -> type[Task]:
    """Returns the `Task` subclass registered for the class of `task_config`.

    Raises:
      ConfigError: If `task_config` is a plain `TaskConfig`, its class has no task (close
        matches listed), its provider fails to import, or what is registered is not a
        `Task` subclass.
    """
    name = type(task_config).__name__
    if type(task_config) is TaskConfig:
        raise ConfigError(
            "`task` is a plain TaskConfig, which names no task; an experiment's task config "
            "must be a registered TaskConfig subclass (see `garden list tasks`)"
        )
    try:
        task_class, description = plugins.load("tasks", name, "task")
    except ConfigError as error:
        raise ConfigError(
            f"no task is registered for task config {name}: {error.__cause__ or error}"
        ) from None
    if not (isinstance(task_class, type) and issubclass(task_class, Task)):
        raise ConfigError(f"{description} is {task_class!r}, which is not a Task subclass")
    return task_class


def get_task(task_config: TaskConfig, logging_dir: str | None = None) -> Task:
    """Builds the task of `task_config`: `TaskClass(task_config, logging_dir=logging_dir)`."""
    return get_task_class(task_config)(task_config, logging_dir=logging_dir)
