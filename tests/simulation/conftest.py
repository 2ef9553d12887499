"""Session fixture: the tiny world generated once."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.simulation.simtools import tiny_config

from simulation.api import generate


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "data"
    generate(tiny_config(), out)
    return out
