from __future__ import annotations

import pytest
from tests.servefix import build


@pytest.fixture(scope="session")
def roots(tmp_path_factory):
    return build(tmp_path_factory)
