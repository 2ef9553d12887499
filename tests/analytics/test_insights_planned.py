"""Planned marketing-calendar days in the summary's week-over-week headline and the channels'
baseline (analytics.insights.planned): a peak in the weeks compared against is left out of the
channels' baseline and named in the headline, not read as a slump."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.analytics.insights_synth import CHANNELS, Shock, kpis_from_cube, make_ctx, make_cube
from tests.configs import make_config

from analytics import drivers as dr
from analytics import insights
from analytics.insights import grounding
from analytics.insights.planned import unplanned_trailing
from analytics.insights.sections import _channels, _summary
from analytics.insights_config import InsightsConfig
from analytics.outputs import write_artefacts

# the synthetic store runs 2025-01-01 to 2025-07-01 (a Tuesday): the channels' window is
# 2025-06-25 to 2025-07-01, its baseline the 4 weeks 2025-05-28 to 2025-06-24, and the week
# compared against 2025-06-18 to 2025-06-24
PEAK = Shock("2025-06-11", "2025-06-24", "sessions", 1.5)  # two weeks of +50 % traffic


def _calendar(start: str, end: str, name: str, scope: str = "all") -> pd.DataFrame:
    days = pd.date_range(start, end, freq="D")
    return pd.DataFrame({"date": days, "name": name, "kind": "campaign", "scope": scope})


def _sections(shocks, cal):
    kpis = kpis_from_cube(make_cube(shocks))
    panel, cfg = dr.SlicePanel(kpis), InsightsConfig()
    return _summary(panel, cfg, kpis, cal), _channels(panel, cfg, cal), panel


def test_a_planned_peak_in_the_baseline_weeks_flags_no_channel_and_is_named(tmp_path):
    # without the calendar the peak weeks are half the baseline: every channel looks ~20 % down
    _, blind, _ = _sections([PEAK], None)
    assert blind.underperformers == sorted(CHANNELS)
    ctx = make_ctx(tmp_path, [PEAK], [], calendar=_calendar("2025-06-11", "2025-06-24", "peak"))
    ctx.config = make_config(insights={"forecast": {"enabled": False}})
    insights.run(ctx)
    write_artefacts(ctx)
    doc = ctx.insights
    ch = doc["channels"]
    assert ch["underperformers"] == [] and ch["planned_window"] == []
    assert [d["date"] for d in ch["planned_baseline"]] == [
        d.date().isoformat() for d in pd.date_range("2025-06-11", "2025-06-24")]
    for c in ch["channels"]:
        assert not c["underperforming"] and abs(c["revenue_vs_baseline_pct"]) < 5
    assert "planned days left out" in ch["baseline"]
    assert ch["note"] == ("The baseline weeks held planned peak (2025-06-11 to 2025-06-24), left "
                          "out of the baseline of the channels they concern.")
    # the week compared against held the peak: the change carries its days, the headline says so
    rev = next(c for c in doc["summary"]["week_over_week"] if c["kpi"] == "revenue")
    assert rev["planned_current"] == []
    assert [(d["date"], d["name"]) for d in rev["planned_previous"]] == [
        (d.date().isoformat(), "peak") for d in pd.date_range("2025-06-18", "2025-06-24")]
    assert rev["change_pct"] < -25  # the plain week-over-week figure is unchanged: it is a fall
    assert ("vs 2025-06-18 to 2025-06-24). The previous week held planned peak (2025-06-18 to "
            "2025-06-24), so the comparison is not like for like.") in doc["summary"]["headline"]
    assert doc["brief"]["headline"] == doc["summary"]["headline"]
    assert grounding.check(doc) == []
    md = (tmp_path / "insights.md").read_text()
    assert "- WoW planned days: this period none; the previous one peak (2025-06-18 to " \
           "2025-06-24)" in md
    assert ch["note"] in md


def test_a_shortfall_during_a_planned_window_is_flagged_and_says_so():
    # an email campaign in the window whose conversion halved: a real shortfall, named as such
    cal = _calendar("2025-06-28", "2025-06-29", "email push", "channel=email")
    drop = Shock("2025-06-25", "2025-07-01", "conversion", 0.5, {"channel": "email"})
    summary, ch, _ = _sections([drop], cal)
    assert ch.underperformers == ["email"]
    email = next(c for c in ch.channels if c.channel == "email")
    assert [str(d.date) for d in email.planned] == ["2025-06-28", "2025-06-29"]
    assert email.reasons[-1] == "during planned email push (2025-06-28 to 2025-06-29)"
    # the campaign's scope is email: the other channels' windows hold no planned day
    assert all(not c.planned for c in ch.channels if c.channel != "email")
    assert [d.scope for d in ch.planned_window] == ["channel=email"] * 2
    assert ch.note.startswith("The window holds planned email push (2025-06-28 to 2025-06-29)")
    # the store's week holds the campaign's days (every scope concerns the whole store)
    assert "This week held planned email push (2025-06-28 to 2025-06-29)" in summary.headline


def test_without_planned_days_near_the_windows_nothing_changes():
    far = _calendar("2025-03-01", "2025-03-02", "spring day")
    plain_s, plain_c, panel = _sections([PEAK], None)
    far_s, far_c, _ = _sections([PEAK], far)
    assert far_s.headline == plain_s.headline and "planned" not in far_s.headline
    assert all(not c.planned_current and not c.planned_previous
               for c in far_s.week_over_week + far_s.month_over_month)
    assert far_c.note is None and far_c.planned_window == far_c.planned_baseline == []
    assert [c.model_dump(exclude={"planned"}) for c in far_c.channels] == \
           [c.model_dump(exclude={"planned"}) for c in plain_c.channels]
    # and the baseline is the median of the four weeks' totals before the window, bit for bit
    start, end = pd.Timestamp("2025-06-25"), pd.Timestamp("2025-07-01")
    segs = panel.segments("channel")
    base = unplanned_trailing(panel, "revenue", "channel", segs, start, end, 4, far)
    for i, s in enumerate(segs):
        y = panel.values["revenue"].iloc[:, panel.column("revenue", "channel", s)]
        weeks = [float(y[start - pd.Timedelta(days=7 * w):end - pd.Timedelta(days=7 * w)].sum())
                 for w in range(1, 5)]
        assert base[i] == pytest.approx(float(np.median(weeks)), rel=1e-12)


def test_a_weekday_with_every_baseline_day_planned_reaches_back_further():
    kpis = kpis_from_cube(make_cube())
    panel = dr.SlicePanel(kpis)
    start, end = pd.Timestamp("2025-06-25"), pd.Timestamp("2025-07-01")
    col = panel.column("revenue", "channel", "organic")
    y = panel.values["revenue"].iloc[:, col]

    def expect(weeks_back):  # sum over the window of each weekday's median at those lags
        return sum(float(np.median([y[d - pd.Timedelta(days=7 * w)] for w in weeks_back]))
                   for d in pd.date_range(start, end))

    def baseline(cal):
        return unplanned_trailing(panel, "revenue", "channel", ["organic"], start, end, 4,
                                  cal)[0]

    # every day of the 4 baseline weeks planned: each counts at its weekday's median over the
    # 2 nearest unplanned weeks, so every week's total, and their median, is that sum
    assert baseline(_calendar("2025-05-28", "2025-06-24", "long sale")) == \
        pytest.approx(expect([5, 6]), rel=1e-12)
    # 8 weeks: nothing unplanned; each day at its plain median
    assert baseline(_calendar("2025-04-30", "2025-06-24", "longer sale")) == \
        pytest.approx(expect([1, 2, 3, 4]), rel=1e-12)
    # a calendar row for another channel leaves organic's baseline alone: the weeks' totals
    weeks = [float(y[start - pd.Timedelta(days=7 * w):end - pd.Timedelta(days=7 * w)].sum())
             for w in (1, 2, 3, 4)]
    assert baseline(_calendar("2025-05-28", "2025-06-24", "email only", "channel=email")) == \
        pytest.approx(float(np.median(weeks)), rel=1e-12)
    # one planned day in one week: that day counts at its weekday's median over the other weeks
    one = _calendar("2025-06-04", "2025-06-04", "one day")  # a Wednesday, 3 weeks back
    day = pd.Timestamp("2025-06-04")
    filled = list(weeks)
    filled[2] += float(np.median([y[day + pd.Timedelta(days=7 * w)] for w in (1, 2, -1)])) \
        - float(y[day])
    assert baseline(one) == pytest.approx(float(np.median(filled)), rel=1e-12)


def test_a_calendar_name_with_digits_in_the_headline_is_grounded():
    summary, _, _ = _sections([PEAK], _calendar("2025-06-22", "2025-06-24", "xmas 2025"))
    doc = summary.model_dump(mode="json")
    assert "previous week held planned xmas 2025 (2025-06-22 to 2025-06-24)" in doc["headline"]
    assert grounding.check_summary(doc) == []
    # a date the fields do not hold is still caught
    doc["headline"] = doc["headline"].replace("2025-06-22", "2025-06-21")
    assert grounding.check_summary(doc) == ["summary.headline: date 2025-06-21 is not a field"]


@pytest.mark.parametrize("name", ["planned", ""])
def test_an_unnamed_calendar_day_is_not_named_planned_twice(name):
    """A calendar row without a name takes the default name `planned`: the headline says
    "held planned days (…)", not "held planned planned (…)"."""
    summary, _, _ = _sections([PEAK], _calendar("2025-06-22", "2025-06-22", name))
    doc = summary.model_dump(mode="json")
    assert "previous week held planned days (2025-06-22)" in doc["headline"]
    assert "planned planned" not in doc["headline"]
    assert grounding.check_summary(doc) == []


@pytest.mark.parametrize("scope, planned", [("channel=email", False), ("all", True),
                                            ("channel=paid_search", True),
                                            ("country=US", True)])
def test_an_incident_is_planned_only_by_a_calendar_day_that_concerns_its_slice(
        tmp_path, scope, planned):
    # TRAIN s8: a paid_search incident running into a video campaign's days was a "planned
    # event" episode beside the flash sale's; the detectors and the consensus mute a planned day
    # only on the slices its scope concerns (a country's campaign concerns every channel)
    shock = Shock("2025-05-10", "2025-05-12", "sessions", 0.4, {"channel": "paid_search"})
    ctx = make_ctx(tmp_path, [shock], [("sessions", "2025-05-10", "2025-05-14", "down", "E1")],
                   calendar=_calendar("2025-05-13", "2025-05-14", "promo", scope))
    ctx.config = make_config(insights={"forecast": {"enabled": False}})
    ctx.incidents[0].dimension, ctx.incidents[0].segment = "channel", "paid_search"
    insights.run(ctx)
    (inc,) = ctx.insights["incidents"]
    assert inc["planned"] is planned
    assert [(c["date"], c["scope"]) for c in inc.get("calendar", [])] == (
        [("2025-05-13", scope), ("2025-05-14", scope)] if planned else [])
    (ep,) = ctx.insights["episodes"]
    assert ep["episode_id"].endswith("-planned") is planned
