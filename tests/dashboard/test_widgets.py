"""dashboard.widgets.paginate under streamlit.testing: every row reachable, the caption right on
an empty table. Mutants of the page count (floor for ceil) and of the empty caption survived
tests/dashboard/test_pages.py (audit-mutcli)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _app(n: int) -> None:
    import pandas as pd

    from dashboard.widgets import paginate

    paginate(pd.DataFrame({"x": range(n)}), key="t", page_size=25)


def test_a_last_partial_page_is_reachable_and_an_empty_table_says_0():
    at = AppTest.from_function(_app, args=(30,), default_timeout=60).run()
    assert not at.exception
    assert at.number_input[0].max == 2
    assert at.caption[0].value == "rows 1–25 of 30"
    at.number_input[0].set_value(2).run()
    assert at.caption[0].value == "rows 26–30 of 30"
    at = AppTest.from_function(_app, args=(0,), default_timeout=60).run()
    assert not at.exception and at.caption[0].value == "rows 0–0 of 0"


def test_a_missing_or_nan_figure_prints_n_a():
    from dashboard.widgets import fmt

    assert fmt(None) == fmt(float("nan")) == "n/a"
    assert fmt(0.5) == "0.500" and fmt(3) == "3"
