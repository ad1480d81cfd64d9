"""`OneOfConfig`: a config whose `type` field chooses one of its other fields.

    @dataclasses.dataclass
    class OptimizerConfig(OneOfConfig):
        type: str | None = "sgd"
        sgd: SGDConfig = dataclasses.field(default_factory=SGDConfig)
        adam: AdamConfig = dataclasses.field(default_factory=AdamConfig)

`get()` returns the chosen branch. In YAML it is written as `type` plus the chosen branch
(and any other branch that differs from its default, so nothing is lost on a round trip).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from garden_core.config.base import Config
from garden_core.config.errors import ConfigError, join_path, unknown_key


@dataclasses.dataclass
class OneOfConfig(Config):
    """A config with a `type` field naming the branch (another field) that is in use."""

    type: str | None = None
    # Model Garden branches Garden does not implement: name -> why. Their settings are
    # accepted while another branch is chosen (they have no effect there); choosing one is
    # an error that says it is not supported.
    unsupported_branches: ClassVar[dict[str, str]] = {}

    @classmethod
    def _drop_inert_unsupported(cls, data: dict, path: str) -> dict:
        data = super()._drop_inert_unsupported(data, path)
        kept = {}
        for key, value in data.items():
            if key in cls.unsupported_branches and key not in cls.field_types():
                if not isinstance(value, dict):
                    raise ConfigError(
                        f"`{join_path(path, key)}` expects the settings of Model Garden's "
                        f"`{key}` branch, got {value!r}"
                    )
                continue
            kept[key] = value
        return kept

    @classmethod
    def branches(cls) -> list[str]:
        """The names of the branches `type` may choose."""
        return [name for name in cls.field_types() if name != "type"]

    def _set(self, name: str, value: Any, path: str) -> None:
        if name == "type" and value is not None:
            if not isinstance(value, str):
                raise ConfigError(
                    f"`{join_path(path, 'type')}` expects a branch name, got {value!r}"
                )
            if value in self.unsupported_branches:
                raise ConfigError(
                    f"`{join_path(path, 'type')}` is {value!r}: Garden does not support this "
                    f"Model Garden choice ({self.unsupported_branches[value]}); choose one of "
                    + ", ".join(self.branches())
                )
            if value not in self.branches():
                error = unknown_key(path, value, self.branches())
                raise ConfigError(
                    f"`{join_path(path, 'type')}` is {value!r}, which is not one of this "
                    f"config's branches: {str(error).split(': ', 1)[1]}"
                )
        super()._set(name, value, path)

    def get(self) -> Any:
        """Returns the chosen branch (None when `type` is None)."""
        return None if self.type is None else getattr(self, self.type)

    def as_dict(self) -> dict[str, Any]:
        full = super().as_dict()
        defaults = {f.name: f for f in dataclasses.fields(self)}
        kept = {"type": self.type}
        for name in self.branches():
            field = defaults[name]
            if field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = field.default
            if name == self.type or getattr(self, name) != default:
                kept[name] = full[name]
        return kept
