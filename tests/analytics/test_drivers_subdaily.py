"""The drivers of a sub-daily `--kpis` file measure a move against the same-weekday baseline.

A 5-minute request count by host, one host down to ~5 % for five hours: the detectors' expected
values follow such an outage within about an hour, so the episode's drivers (``expected="auto"``,
detectors first) read the host at +1.3 % "vs expected" on the outage day (19,832 against
19,575); against the baseline of the days around it the host is down ~31 %. On a sub-daily
panel "auto" now takes the baseline first and the detectors only where it is missing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics import drivers as dr
from shocklab.cli import run_cli

PER_DAY = 288
DAYS = 21
DOWN = ("2025-03-17 10:00", "2025-03-17 15:00")  # day 15, host a at 5 %
HOSTS = (("a", 1.0), ("b", 0.8), ("c", 0.6))


def _requests(days: int = DAYS, seed: int = 7) -> pd.DataFrame:
    """Long layout: a 5-minute count per host with a daily cycle, and the overall total."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2025-03-03", periods=days * PER_DAY, freq="5min")
    hod = idx.hour + idx.minute / 60
    base = 100 + 60 * np.sin(2 * np.pi * (hod - 6) / 24)
    down = (idx >= pd.Timestamp(DOWN[0])) & (idx < pd.Timestamp(DOWN[1]))
    parts, total = [], np.zeros(len(idx))
    for host, scale in HOSTS:
        v = rng.poisson(base * scale).astype(float)
        if host == "a":
            v[down] = np.round(v[down] * 0.05)
        total += v
        parts.append(pd.DataFrame({"timestamp": idx, "kpi": "requests", "value": v,
                                   "dimension": "host", "segment": host}))
    parts.append(pd.DataFrame({"timestamp": idx, "kpi": "requests", "value": total,
                               "dimension": "", "segment": ""}))
    out = pd.concat(parts, ignore_index=True)
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


@pytest.fixture(scope="module")
def outage_episode(tmp_path_factory) -> dict:
    from run_analysis import main

    tmp = tmp_path_factory.mktemp("subdaily")
    csv = tmp / "requests.csv"
    _requests().to_csv(csv, index=False)
    out = tmp / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet",
                          "--sum-columns", "requests"]) == 0
    episodes = json.loads((out / "insights.json").read_text())["episodes"]
    hit = [e for e in episodes if e["measured_start"] <= "2025-03-17" <= e["measured_end"]]
    assert len(hit) == 1, [e["episode_id"] for e in episodes]
    return hit[0]


def test_an_outage_episodes_driver_reads_the_host_against_the_baseline(outage_episode):
    top = outage_episode["drivers"]["top"]
    assert (top["dimension"], top["value"]) == ("host", "a")
    assert outage_episode["drivers"]["expected_source"] == "baseline"
    # 60 of host a's 288 periods at 5 % of its busiest hours: about a third of its day
    assert -40 < top["relative_change_pct"] < -20, top
    assert top["change"] < 0 and top["share_of_change"] > 0.8, top


def _panel(days: int, per_day: int) -> dr.SlicePanel:
    """Hosts' counts with detectors' expected values that equal the actual (an expected value
    that caught up), ``per_day`` periods a day."""
    df = _requests(days)
    df = df.loc[df["dimension"] == "host"]
    stamps = pd.to_datetime(df["timestamp"])
    if per_day == 1:  # the same file summed to days
        df = df.assign(timestamp=stamps.dt.normalize()).groupby(
            ["timestamp", "dimension", "segment"], as_index=False)["value"].sum()
        stamps = df["timestamp"]
    kpis = pd.DataFrame({"date": stamps, "dimension": "host", "segment": df["segment"],
                         "requests": df["value"]})
    det = kpis.rename(columns={"requests": "expected"}).assign(kpi="requests",
                                                               detector="rolling_zscore")
    return dr.SlicePanel(kpis, det, gaps=True)


@pytest.mark.parametrize("per_day", [PER_DAY, 1])
def test_auto_takes_the_baseline_first_on_sub_daily_panels_only(per_day):
    panel = _panel(DAYS, per_day)
    assert panel.subdaily == (per_day > 1)
    day = pd.Timestamp("2025-03-17")
    got = dr.explain(panel, "requests", day, day, expected="auto")
    table = dr.window_table(panel, "requests", day, day, "auto")
    want = "baseline" if per_day > 1 else "detector"   # a daily file: unchanged
    assert got.source == want and set(table["source"]) == {want}
    a = table.set_index("segment").loc["a"]
    rel = a["a_requests"] / a["e_requests"] - 1
    assert (-0.4 < rel < -0.2) if per_day > 1 else rel == 0, rel
    if per_day > 1:   # the named driver: host a, down
        assert got.top is not None and got.top["value"] == "a", got.top
        assert got.top["relative_change"] < -0.2, got.top


def test_a_sub_daily_file_too_short_for_a_baseline_keeps_the_detectors():
    panel = _panel(3, PER_DAY)  # three days: no same weekday a week away
    day = pd.Timestamp("2025-03-04")
    table = dr.window_table(panel, "requests", day, day, "auto")
    assert set(table["source"]) == {"detector"} and table["e_requests"].notna().all()
    assert dr.explain(panel, "requests", day, day, expected="auto").source == "detector"
