"""A `--kpis` file whose columns are its own series plus one named like a store KPI (`orders`):
the episode of a +60 spike on `value` was titled "orders down -0.5%" (the funnel's biggest mover
named the episode), so an analyst or an LLM reading insights.json was told the wrong KPI moved."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shocklab.cli import run_cli


def test_an_episode_of_a_non_funnel_series_is_named_after_that_series(tmp_path):
    from run_analysis import main

    rng = np.random.default_rng(1)
    ts = pd.date_range("2025-03-01", periods=24 * 40, freq="h")
    value = 100 + 10 * np.sin(np.arange(len(ts)) * 2 * np.pi / 24) + rng.normal(0, 2, len(ts))
    value[500:510] += 60
    csv = tmp_path / "mixed.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": value.round(3),
                  "orders": rng.poisson(50, len(ts))}).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    ins = json.loads((out / "insights.json").read_text())
    spike = ts[500].strftime("%Y-%m-%d")
    eps = [e for e in ins["episodes"] if e["start"] <= spike <= e["end"]]
    assert eps, [e["episode_id"] for e in ins["episodes"]]
    for ep in ins["episodes"]:
        if ep["kpis"] == ["value"]:  # incidents on `value` only
            assert ep["primary_kpi"] == "value", ep["title"]
            assert ep["title"].startswith("value "), ep["title"]
    # a funnel column flagged beside it in the same episode (a mixed episode) does not name it
    # unless it moved more: 'orders up +0.5%' titled the +13 % spike on `value` once rolling_zscore
    # (overall series at their own 3 looks) flagged an orders hour there too
    for ep in eps:
        assert ep["primary_kpi"] == "value", ep["title"]
    # the markdown brief says the same
    md = (out / "insights.md").read_text()
    assert all(f"**{ep['title']}**" in md and ep["title"].startswith("value up") for ep in eps)


def _signups_run(tmp_path, days: int, seed: int):
    """A --kpis run on a daily file with one non-store column (signups, no revenue)."""
    from run_analysis import main

    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-01-01", periods=days, freq="D")
    csv = tmp_path / "daily.csv"
    pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"),
                  "signups": (1000 + rng.normal(0, 20, days)).round(1)}).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    return out


def test_a_run_without_truth_does_not_report_the_oracle_as_failed(tmp_path):
    """The oracle is skipped where there is no truth (--kpis, --transactions): insights.json
    listed it in ``detectors_failed`` and the brief said "oracle (FAILED)" on every such run."""
    out = _signups_run(tmp_path, days=60, seed=2)
    run = json.loads((out / "insights.json").read_text())["run"]
    assert "oracle" not in run["detectors_failed"]
    assert run["detectors_failed"] == [d["name"] for d in run["detectors"] if not d["ok"]]
    # the brief lists the detectors that ran; the one not run is on its own line, as in the JSON
    assert "oracle" not in [d["name"] for d in run["detectors"]] and run["detectors"]
    assert [(d["name"], d["error"]) for d in run["detectors_not_run"]] == [
        ("oracle", "no truth/baseline_daily")]
    lines = (out / "insights.md").read_text().splitlines()
    assert lines[3] == "Detectors: " + ", ".join(d["name"] for d in run["detectors"])
    assert "FAILED" not in lines[3] and "oracle" not in lines[3]
    assert lines[4] == "Not run: oracle (no truth/baseline_daily)"


def test_a_long_series_without_revenue_is_not_called_too_short(tmp_path):
    """The brief's headline is revenue week over week; a 120-day --kpis file without a revenue
    column was told "Not enough history for a week-over-week comparison"."""
    out = _signups_run(tmp_path, days=120, seed=4)
    ins = json.loads((out / "insights.json").read_text())
    for text in (ins["brief"]["headline"], ins["summary"]["headline"]):
        assert "Not enough history" not in text and "no revenue" in text.lower(), text


def test_sub_daily_one_hour_blips_are_not_rated_above_a_day_long_spike(tmp_path):
    """Severity's magnitude thresholds (10 / 25 / 50 %) are set for a move lasting a day. On an
    hourly file a one-hour Poisson blip on a small count (-62 % or +144 % in one hour, a calibrated
    score near the threshold) was an episode rated "critical" that headed the brief above a real
    +34 % spike lasting most of a day. The consensus now rates a sub-daily incident's move averaged
    over a day (its change × the share of a day it lasted; the score term unchanged), and the
    insights and incidents.json carry that rating."""
    from run_analysis import main

    from analytics.consensus import severity_of

    rng = np.random.default_rng(3)
    ts = pd.date_range("2025-03-01", periods=24 * 40, freq="h")
    h = np.arange(len(ts))
    value = 100 + 10 * np.sin(h * 2 * np.pi / 24) + rng.normal(0, 2, len(ts))
    spike = slice(24 * 21 + 19, 24 * 21 + 19 + 16)
    value[spike] *= 1.34
    orders = rng.poisson(40 + 8 * np.sin(h * 2 * np.pi / 24))
    orders[24 * 14 + 20] = 75
    csv = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": value.round(3),
                  "orders": orders}).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    ins = json.loads((out / "insights.json").read_text())
    raw = {i["incident_id"]: i for i in json.loads((out / "incidents.json").read_text())[
        "incidents"]}
    rank = {"low": 0, "medium": 1, "high": 2, "critical": 3}

    def rated(i):  # the rule, from the consensus' own fields
        t0, t1 = pd.Timestamp(i["start"]), pd.Timestamp(i["end"])
        share = min(1.0, ((t1 - t0) / pd.Timedelta(hours=1) + 1) / 24)
        return severity_of(i["peak_score"], i["magnitude_pct"] * share)

    for item in ins["incidents"]:
        assert item["severity"] == rated(raw[item["incident_id"]]), item["incident_id"]
    for ep in ins["episodes"]:
        assert ep["severity"] == max((rated(raw[i]) for i in ep["incident_ids"]),
                                     key=rank.get), ep["episode_id"]
    one_hour = [i for i in raw.values() if i["start"] == i["end"]]
    assert any(severity_of(i["peak_score"], i["magnitude_pct"]) == "critical"
               for i in one_hour)  # what a day's thresholds say of an hour's move
    for i in raw.values():  # incidents.json (and the API's severity filter) rate them alike
        assert i["severity"] == rated(i), i["incident_id"]
    day = ts[spike.start].strftime("%Y-%m-%d")
    spike_ep = next(e for e in ins["episodes"] if e["start"] <= day <= e["end"])
    blips = [e for e in ins["episodes"] if all(raw[i]["start"] == raw[i]["end"]
                                               for i in e["incident_ids"])]
    assert blips and all(rank[e["severity"]] < rank[spike_ep["severity"]] for e in blips)
    # the brief's numbered list heads with the spike, not a blip
    brief = (out / "insights.md").read_text().split("## Brief", 1)[1].split("\n## ", 1)[0]
    listed = [ln for ln in brief.splitlines() if ln[:1].isdigit()]
    assert listed and spike_ep["episode_id"] in listed[0], brief


def test_a_generic_series_gets_its_size_and_a_generic_action(tmp_path):
    """A daily --kpis file with `revenue` and a generic column `value`: the +80 % spike on `value`
    was titled "value moved: undetermined" (kpi_changes held only the store's KPIs, so no size)
    and told the analyst to "Investigate the whole funnel: traffic, conversion and basket value",
    which a non-store series does not have."""
    from run_analysis import main

    from analytics.insights.grounding import check_episode

    rng = np.random.default_rng(0)
    t = pd.date_range("2025-01-01", periods=200, freq="D")
    rev = rng.normal(1000, 30, 200)
    rev[150:153] *= 0.5
    val = rng.normal(50, 3, 200)
    val[120] = 90
    csv = tmp_path / "mix.csv"
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d"), "revenue": rev.round(2),
                  "value": val.round(2)}).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    eps = json.loads((out / "insights.json").read_text())["episodes"]
    spike = [e for e in eps if e["kpis"] == ["value"] and e["start"] <= "2025-05-01" <= e["end"]]
    assert len(spike) == 1, [e["title"] for e in eps]
    ep = spike[0]
    assert 60 < ep["kpi_changes"]["value"] < 100, ep["kpi_changes"]        # 90 vs ~50
    assert ep["title"].startswith("value up +"), ep["title"]
    assert "value +" in ep["narrative"], ep["narrative"]
    action = ep["recommended_action"]
    assert "funnel" not in action and "basket" not in action and "value" in action, action
    assert "rise" in action                                                  # up: a rise
    assert check_episode(ep) == []                                           # grounded
    # a store KPI keeps the funnel's words (the revenue drop)
    drop = [e for e in eps if e["kpis"] == ["revenue"] and e["start"] <= "2025-05-31" <= e["end"]]
    assert drop and "funnel" in drop[0]["recommended_action"]


def test_a_run_without_revenue_says_why_it_has_no_seasonality(tmp_path):
    """The Seasonality heading of insights.md was followed by nothing on a run without revenue."""
    md = (_signups_run(tmp_path, days=30, seed=3) / "insights.md").read_text()
    section = md.split("## Seasonality (revenue)\n", 1)[1].split("\n\n", 1)[0]
    assert section.strip() == "- no profile: no revenue series, or fewer than 14 days of it"


def test_a_long_file_of_slices_only_is_not_called_too_short(tmp_path):
    """A long --kpis file of 120 days whose rows are all channel slices (no overall rows): the
    summary has no store-wide series, so its totals and week-over-week changes are empty, and
    the headline said "Not enough history for a week-over-week comparison" of 120 days of data.
    It now says the file has no store-wide series (and where the slices are)."""
    from run_analysis import main

    rng = np.random.default_rng(4)
    days = pd.date_range("2024-01-01", periods=120, freq="D").strftime("%Y-%m-%d")
    rows = [{"date": d, "kpi": k, "value": float(v), "dimension": "channel", "segment": seg}
            for seg, lam in (("web", 100), ("app", 50))
            for k, vals in (("orders", rng.poisson(lam, 120)),
                            ("revenue", (rng.poisson(lam, 120) * 40.0)))
            for d, v in zip(days, vals, strict=True)]
    csv = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--layout", "long", "--out", str(out),
                          "--quiet"]) == 0
    ins = json.loads((out / "insights.json").read_text())
    assert all(t["total"] is None for t in ins["summary"]["totals"])
    for text in (ins["brief"]["headline"], ins["summary"]["headline"]):
        assert "Not enough history" not in text, text
        assert "no store-wide" in text.lower(), text


def test_a_weekly_files_daily_mean_counts_the_last_weeks_days(tmp_path):
    """A weekly --kpis export (20 rows, one a week, revenue 7,000 each: 1,000 a day): the
    summary's daily_mean was the total over the days from the first row to the last (134), not
    the 140 the 20 weeks cover — 1,044.78 a day, 4.5 % high (a monthly file's, ~9 %). The last
    row stands for its whole step."""
    from run_analysis import main

    stamps = pd.date_range("2024-01-01", periods=20, freq="7D")
    csv = tmp_path / "weekly.csv"
    pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"), "revenue": 7000.0,
                  "orders": 70.0}).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    totals = {t["kpi"]: t for t in json.loads((out / "insights.json").read_text())[
        "summary"]["totals"]}
    assert totals["revenue"]["total"] == 140000
    assert totals["revenue"]["daily_mean"] == pytest.approx(1000)
    assert totals["orders"]["daily_mean"] == pytest.approx(10)
    assert totals["aov"]["daily_mean"] == pytest.approx(100)
