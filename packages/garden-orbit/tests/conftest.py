"""garden-orbit test setup: two logical CPU devices, so MirroredStrategy has two replicas."""

import os
import sys

# Make the shared helpers (orbit_testing.py) importable from tests and worker scripts.
sys.path.insert(0, os.path.dirname(__file__))

import orbit_testing  # noqa: E402

orbit_testing.configure_logical_cpus()
