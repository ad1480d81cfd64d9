"""Temporary plugin distributions for tests.

`make_distribution` writes what `pip install` would leave behind for a small plugin package:
a `*.dist-info` folder (METADATA and entry_points.txt) and the plugin's module, under a
folder that a fresh interpreter then gets on its `PYTHONPATH` (`run_python`). Entry points
are read from distribution metadata, so the plugin is found exactly as an installed one
would be, without installing anything into the interpreter that runs the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path


def make_distribution(
    root: str | os.PathLike,
    name: str,
    module: str,
    source: str,
    entry_points: Mapping[str, Mapping[str, str]],
    version: str = "1.2.3",
) -> Path:
    """Writes a minimal installed distribution `name` with one module and entry points.

    Args:
      root: The folder to write into (put it on `PYTHONPATH` to use the distribution).
      name: The distribution's name, e.g. "acme-vision".
      module: The module's name, e.g. "acme_vision" (written as `root/<module>.py`).
      source: The module's source (dedented before writing).
      entry_points: Group -> {name: "module:attribute"}, e.g.
        `{"garden.backbones": {"acme_net": "acme_vision:build_acme_net"}}`.
      version: The distribution's version.

    Returns:
      `root`, as a Path.
    """
    root = Path(root)
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in items.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


def run_python(
    root: str | os.PathLike, code: str, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter with `root` on its `PYTHONPATH`.

    Third-party plugins are enabled (`GARDEN_DISABLE_PLUGINS` is cleared unless given in
    `env`), and TensorFlow's C++ logging is quiet.
    """
    environment = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.pop("GARDEN_DISABLE_PLUGINS", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )
