"""Second hostile-input audit of config files and flags (session 45): a calendar date written
with an offset keeps its day, a calendar of thousands of names does not make Prophet fit one
effect each, a --set value meant as a mapping or list says why it is not one, a config that is not
UTF-8 says where, and an --out name too long for its lock file is refused up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.external_calendar import load_calendar
from analytics.forecasting import MAX_HOLIDAYS, _holidays
from shocklab.atomic import SIBLING_EXTRA, check_writable_parent
from shocklab.configio import apply_overrides
from shocklab.errors import InputError
from shocklab.yamlio import load_yaml


def _daily(days: int = 60) -> pd.DataFrame:
    dates = pd.date_range("2025-02-01", periods=days, freq="D")
    return pd.DataFrame({"date": dates, "dimension": "overall", "segment": "all",
                         "revenue": 100.0})


@pytest.mark.parametrize("written", ["2025-03-02T00:00:00+05:00", "2025-03-02T00:00:00-08:00",
                                     "2025-03-02"])
def test_a_calendar_date_with_an_offset_is_the_day_written(tmp_path, written):
    """+05:00 midnight was converted to UTC first: 1 March planned, 2 March (the promotion, as
    the KPI file's local midnights are read) flagged."""
    path = tmp_path / "cal.csv"
    path.write_text(f"date,name\n{written},promo\n")
    table, _ = load_calendar(path, _daily())
    assert [d.date().isoformat() for d in pd.to_datetime(table["date"])] == ["2025-03-02"]


def test_a_calendar_of_many_names_is_fitted_by_kind():
    """2,000 one-day names were 2,000 Prophet regressors: a 120-day file took 432 s."""
    y = pd.Series(1.0, index=pd.date_range("2025-01-01", periods=120, freq="D"))
    days = y.index[:60]
    many = pd.DataFrame({"date": days, "name": [f"promo {i}" for i in range(60)],
                         "kind": np.where(np.arange(60) % 2, "campaign", "holiday")})
    hol = _holidays(many, y)
    assert set(hol["holiday"]) == {"planned campaign", "planned holiday"} and len(hol) == 60
    few = many.iloc[:MAX_HOLIDAYS]
    assert set(_holidays(few, y)["holiday"]) == set(few["name"])   # as before: one per name
    no_kind = many.drop(columns="kind")
    assert set(_holidays(no_kind, y)["holiday"]) == {"planned"}


@pytest.mark.parametrize(("value", "why"), [
    ("traffic={base_sessions: 1000, base_sessions: 2000}", "duplicate key 'base_sessions'"),
    ("consensus={min_votes: 3", "not a valid YAML mapping (expected ',' or '}'"),
    ("kpis=[orders, revenue", "not a valid YAML list"),
])
def test_a_set_value_meant_as_a_mapping_or_list_says_why_it_is_not(value, why):
    """It was used as text: 'Input should be a valid dictionary (got '{base_sessions: …}')'."""
    with pytest.raises(InputError, match=r"^--set '.*': not a valid YAML") as exc:
        apply_overrides({}, [value])
    assert why in str(exc.value)
    assert apply_overrides({}, ["name=a plain: text"]) == {"name": {"a plain": "text"}}
    assert apply_overrides({}, ["name=just text"]) == {"name": "just text"}


def test_a_config_that_is_not_utf8_says_where(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("scenario: demo\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError) as exc:
        load_yaml(path)
    msg = str(exc.value)
    assert "not UTF-8 (byte 0xe9 at line 2, column 10); save the file as UTF-8" in msg, msg


def test_an_out_name_too_long_for_its_lock_file_is_refused(tmp_path):
    """A legal 250-character name failed at the lock: 'cannot create lock file …'."""
    with pytest.raises(InputError, match=r"its name is 250 bytes; at most \d+ fit"):
        check_writable_parent(tmp_path / ("x" * 250))
    ok = tmp_path / ("y" * (255 - SIBLING_EXTRA))
    assert check_writable_parent(ok) == ok
    assert not Path(ok).exists()


def test_a_set_index_into_a_list_the_config_lacks_says_so():
    """'--set detectors.isolation_forest.kpis.0=orders' built {0: 'orders'} where the config has
    no kpis list: 'Input should be a valid list' did not say why."""
    from analytics.config import config_from_raw
    from shocklab.configio import apply_overrides, load_yaml

    raw = apply_overrides(load_yaml(Path(__file__).resolve().parents[2] / "config/analysis.yaml"),
                          ["detectors.isolation_forest.kpis.0=orders"])
    with pytest.raises(InputError, match=r"detectors\.isolation_forest\.kpis: a list is expected "
                                         r"here, and an index was set where the config holds no "
                                         r"list"):
        config_from_raw(raw, "analysis.yaml")
