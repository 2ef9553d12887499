from __future__ import annotations

import sys

import pytest
from tests.dashboard.apptest import open_page
from tests.servefix import build


@pytest.fixture(scope="session")
def roots(tmp_path_factory):
    return build(tmp_path_factory)


@pytest.fixture()
def page(roots, monkeypatch):
    """``page(name, run, **query)``: app.py over the built roots (a test may point
    SHOCKLAB_REPORTS / SHOCKLAB_RUNS elsewhere before opening a page)."""
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(roots.reports))
    monkeypatch.setenv("SHOCKLAB_RUNS", str(roots.runs))
    monkeypatch.delenv("SHOCKLAB_DATA", raising=False)
    return open_page


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
