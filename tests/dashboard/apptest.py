"""Opening a dashboard page under streamlit.testing (AppTest), shared by the page tests."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest
from tests.servefix import ROOT

# the error app.py's last line of defence shows in place of a page that raised
NET = "cannot be drawn"


def open_page(name: str, run: str | None = None, *, net_ok: bool = False, **params) -> AppTest:
    """Run app.py on page ``name`` (and run ``run``) with the query parameters ``params``; no
    exception may escape, nor (unless ``net_ok``) reach app.py's last line of defence: that is a
    page bug or a run file the store does not check, never an expected outcome."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["page"] = name
    if run:
        at.query_params["run"] = run
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert net_ok or not [e for e in at.error if NET in e.value], [e.value for e in at.error]
    return at


def texts(at: AppTest) -> str:
    """Every text element of the page and the sidebar's markdown and captions, one per line."""
    kinds = ("markdown", "caption", "info", "warning", "success", "error", "subheader", "title")
    parts = [e.value for kind in kinds for e in getattr(at, kind)]
    parts += [e.value for kind in ("markdown", "caption") for e in getattr(at.sidebar, kind)]
    return "\n".join(str(p) for p in parts)
