from __future__ import annotations

import sys

import pytest
from tests.servefix import build


@pytest.fixture(scope="session")
def roots(tmp_path_factory):
    return build(tmp_path_factory)


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's script runner (AppTest) installs the page's script as ``sys.modules
    ["__main__"]`` and leaves it there. A spawn-started process pool later in the same test worker
    re-ran that script in its children (``AppTest.from_function``'s temporary file: NameError
    '__args'), so the experiments' spawn tests broke with BrokenProcessPool and the Dask test's
    nanny failed to start (CI, 2026-12-03). Put the worker's own ``__main__`` back."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
