"""A `--kpis` file's own columns are gauges unless declared counts (`--sum-columns`).

Every day figure of a `--kpis` file summed its periods ("its observed periods' mean times a
whole day's periods"). For a gauge that is wrong: NAB's ec2_cpu_utilization_825cc2 (5-minute CPU
%, ~90) had incidents with `baseline_expected` 25,554.6 and a KPI plot from 17,700 to 27,600.
A generic column's day is now the mean of its observed periods and a window the mean of its days;
store KPIs keep their rules, and a column named by `--sum-columns` is summed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics import drivers as dr
from analytics.external import averaged_columns, load_kpis_file
from shocklab.cli import run_cli

PER_DAY = 288  # 5-minute periods in a day
DAYS = 21
OUTAGE_DAY = 15


def _five_minute(seed: int = 7) -> pd.DataFrame:
    """21 days of a 5-minute CPU % (~40, a daily cycle) and request count (~100 a period), both
    down for three hours on day 15."""
    rng = np.random.default_rng(seed)
    n = PER_DAY * DAYS
    stamps = pd.date_range("2025-03-03", periods=n, freq="5min")
    phase = np.sin(2 * np.pi * np.arange(n) / PER_DAY)
    cpu = np.clip(40 + 8 * phase + rng.normal(0, 1.5, n), 0, 100)
    requests = rng.poisson(100 * (1 + 0.3 * phase)).astype(float)
    out = slice(PER_DAY * OUTAGE_DAY + 120, PER_DAY * OUTAGE_DAY + 156)
    cpu[out] = 4.0
    requests[out] = rng.poisson(5, 36)
    return pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"),
                         "cpu": cpu.round(3), "requests": requests})


def _run(tmp_path, name: str, df: pd.DataFrame, *flags: str):
    from run_analysis import main

    csv = tmp_path / f"{name}.csv"
    if not csv.exists():
        df.to_csv(csv, index=False)
    out = tmp_path / f"run-{name}-{len(flags)}"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet", *flags]) == 0
    details = json.loads((out / "insights_details.json").read_text())["incidents"]
    run = json.loads((out / "run.json").read_text())
    return details, run


def _baselines(details: dict, kpi: str) -> list[float]:
    return [d["baseline_expected"] for d in details.values()
            if d.get("kpi", "") == kpi and d.get("baseline_expected") is not None]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gauges")
    df = _five_minute()
    plain = _run(tmp, "metrics", df)
    counted = _run(tmp, "metrics", df, "--sum-columns", "requests")
    return plain, counted


def _details_kpi(details: dict) -> dict:
    # the details file is keyed by incident id: I-<kpi>-overall-all-<time>-<direction>
    return {k: {**v, "kpi": k.split("-")[1]} for k, v in details.items()}


def test_a_five_minute_gauge_is_on_its_own_scale(runs):
    (details, run), _ = runs
    assert run["ingest"]["day_figures"] == {"cpu": "mean", "requests": "mean"}
    base = _baselines(_details_kpi(details), "cpu")
    assert base, "the three-hour drop on day 15 made no cpu incident"
    # the same weekdays' mean CPU %: ~40 (it read ~11,500, 40 x 288, before)
    assert all(30 < b < 50 for b in base), base
    outage = [v for k, v in details.items()
              if k.startswith("I-cpu-") and f"2025-03-{3 + OUTAGE_DAY:02d}" in k]
    assert outage and min(v["actual"] for v in outage) < 10   # the incident's own periods


def test_a_declared_count_is_summed_and_the_gauge_is_not(runs):
    (plain, plain_run), (counted, counted_run) = runs
    assert counted_run["ingest"]["day_figures"] == {"cpu": "mean", "requests": "sum"}
    assert counted_run["run_id"] != plain_run["run_id"]   # the figures differ: a new run id
    req = _baselines(_details_kpi(counted), "requests")
    assert req and all(20_000 < b < 40_000 for b in req), req   # ~100 a period x 288 a day
    req_mean = _baselines(_details_kpi(plain), "requests")
    assert req_mean and all(60 < b < 140 for b in req_mean), req_mean   # the default: a mean
    # the gauge reads the same with or without the declaration
    assert _baselines(_details_kpi(counted), "cpu") == _baselines(_details_kpi(plain), "cpu")


@pytest.mark.parametrize("flags, says", [
    (["--sum-columns", "requets"], "'requets' not a KPI column"),
    (["--sum-columns", ","], "give at least one column name"),
])
def test_a_bad_sum_columns_is_one_line_and_exit_2(tmp_path, capsys, flags, says):
    from run_analysis import main

    csv = tmp_path / "m.csv"
    _five_minute().head(600).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not out.exists()


def test_sum_columns_needs_kpis_and_refuses_a_ratio(tmp_path, capsys):
    from run_analysis import main

    assert run_cli(main, ["--data", str(tmp_path), "--sum-columns", "x", "--quiet"]) == 2
    assert "--sum-columns applies to --kpis only" in capsys.readouterr().err
    csv = tmp_path / "store.csv"
    pd.DataFrame({"date": pd.date_range("2025-01-01", periods=30).strftime("%Y-%m-%d"),
                  "orders": 10.0, "sessions": 200.0, "conversion_rate": 0.05}).to_csv(csv,
                                                                                       index=False)
    assert run_cli(main, ["--kpis", str(csv), "--sum-columns", "conversion_rate",
                          "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "conversion_rate is a ratio KPI" in capsys.readouterr().err


def test_store_kpis_keep_their_rules(tmp_path):
    csv = tmp_path / "store.csv"
    pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=48, freq="h"),
                  "orders": 10.0, "sessions": 200.0, "conversion_rate": 0.05,
                  "latency_ms": 120.0}).to_csv(csv, index=False)
    ds = load_kpis_file(csv, sum_columns=["orders"])   # naming a store count changes nothing
    assert ds.ingest["day_figures"] == {"orders": "sum", "sessions": "sum",
                                        "conversion_rate": "pooled", "latency_ms": "mean"}
    assert averaged_columns(ds) == {"latency_ms"}


def test_a_day_missing_half_its_periods_keeps_a_gauges_mean(tmp_path):
    """Gaps stay gaps: a gauge's day is its observed periods' mean, a declared count's its
    observed mean times a whole day's periods."""
    df = _five_minute()
    day2 = np.arange(PER_DAY * 2, PER_DAY * 3)
    df = df.drop(index=day2[::2])   # every other reading of day 2 never exported
    csv = tmp_path / "gappy.csv"
    df.to_csv(csv, index=False)
    ds = load_kpis_file(csv, sum_columns=["requests"])
    assert ds.ingest["missing_periods"] == PER_DAY // 2
    panel = dr.SlicePanel(ds.tables["kpis_daily"], gaps=True, means=averaged_columns(ds))
    d = pd.date_range("2025-03-03", periods=DAYS, freq="D")
    cpu = [panel.window_sums("cpu", day, day, "actual").iloc[0] for day in d[:4]]
    assert all(35 < c < 45 for c in cpu), cpu   # a mean CPU %, not 40 x 288 (or x 144)
    assert abs(cpu[2] / np.mean([cpu[1], cpu[3]]) - 1) < 0.03, cpu
    req = [panel.window_sums("requests", day, day, "actual").iloc[0] for day in d[:4]]
    assert abs(req[2] / np.mean([req[1], req[3]]) - 1) < 0.05, req   # not half
    assert 25_000 < req[2] < 33_000, req
    # a week's figure: the mean of its days for the gauge, the sum for the count
    week = panel.window_sums("cpu", d[0], d[6], "actual").iloc[0]
    assert np.isclose(week, np.mean([panel.window_sums("cpu", x, x, "actual").iloc[0]
                                     for x in d[:7]]))
    assert panel.window_sums("requests", d[0], d[6], "actual").iloc[0] > 6 * 25_000


def test_a_daily_gauge_file_reads_its_rows(tmp_path):
    """One period a day: a day is its row (as before); a window is the mean of its days, not
    their sum (a week of 20 °C read 140)."""
    stamps = pd.date_range("2025-01-01", periods=60, freq="D")
    temp = 20 + np.sin(np.arange(60) / 5)
    csv = tmp_path / "daily.csv"
    pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"), "value": temp}).to_csv(csv, index=False)
    ds = load_kpis_file(csv)
    panel = dr.SlicePanel(ds.tables["kpis_daily"], gaps=True, means=averaged_columns(ds))
    days = [panel.window_sums("value", x, x, "actual").iloc[0] for x in stamps]
    assert np.allclose(days, temp)
    assert np.isclose(panel.window_sums("value", stamps[7], stamps[13], "actual").iloc[0],
                      temp[7:14].mean())
    assert np.isclose(panel.window_sums("value", stamps[14], stamps[20], "shift",
                                        shift_days=7).iloc[0], temp[7:14].mean())
    base = panel.window_sums("value", stamps[30], stamps[32], "baseline").iloc[0]
    assert 18 < base < 22   # the mean of the days' same-weekday medians


def test_the_kpi_plot_draws_a_gauges_daily_mean(tmp_path, plotted):
    from analytics import report
    from analytics.config import load_analysis_config
    from analytics.context import RunContext

    figs = plotted
    csv = tmp_path / "m.csv"
    _five_minute().to_csv(csv, index=False)
    for declared in ([], ["requests"]):
        ds = load_kpis_file(csv, sum_columns=declared)
        ctx = RunContext(config=load_analysis_config(None), data=ds, out_dir=tmp_path)
        ctx.kpis_daily, ctx.detections = ds.tables["kpis_daily"], None
        assert report.plot_kpi(ctx, "cpu") is not None
        ax = figs[-1].axes[0]
        y = ax.lines[0].get_ydata()
        assert len(y) == DAYS and 30 < np.median(y) < 50, y   # ~40, not ~11,500
        assert "mean of its 5 min periods" in ax.get_title() and "daily mean" in ax.get_ylabel()
        assert report.plot_kpi(ctx, "requests") is not None
        ax = figs[-1].axes[0]
        y = np.median(ax.lines[0].get_ydata())
        assert (20_000 < y < 40_000) if declared else (60 < y < 140), y
        assert ("sum of its 5 min periods" if declared else "mean of its") in ax.get_title()


def test_the_detectors_expected_days_read_like_the_actual_days():
    """The panel's "detector" source (an episode's drivers on a file with slices) took the
    median of a day's period-level expected values: a 5-minute count's day read ~43,000 against
    an expected ~150 (drivers "+28,396 % vs expected" on every host). A day of expected values
    is now read like the actual day beside it: a gauge's periods' mean, a count's mean times a
    whole day's periods."""
    stamps = pd.date_range("2025-03-03", periods=PER_DAY * 3, freq="5min")
    phase = np.sin(2 * np.pi * np.arange(len(stamps)) / PER_DAY)
    rows, dets = [], []
    for host, level in (("a", 100.0), ("b", 150.0)):
        req = level * (1 + 0.5 * phase) ** 2   # skewed: a day's median period is not its mean
        cpu = 40 + 8 * phase
        rows.append(pd.DataFrame({"date": stamps, "dimension": "host", "segment": host,
                                  "requests": req, "cpu": cpu}))
        for kpi, v in (("requests", req), ("cpu", cpu)):
            for det, f in (("rolling_zscore", 1.0), ("isolation_forest", 1.1)):
                dets.append(pd.DataFrame({"kpi": kpi, "date": stamps, "dimension": "host",
                                          "segment": host, "detector": det,
                                          "expected": v * f}))
    kpis = pd.concat(rows, ignore_index=True)
    panel = dr.SlicePanel(kpis, pd.concat(dets, ignore_index=True), gaps=True, means={"cpu"})
    day = stamps[PER_DAY]
    for comp in ("requests", "cpu"):
        act = panel.window_sums(comp, day, day, "actual")
        exp = panel.window_sums(comp, day, day, "detector")
        # the two detectors' median: the mean of 1.0 x and 1.1 x, period by period
        assert np.allclose(exp / act, 1.05), (comp, act.tolist(), exp.tolist())
    # two days: a count's sum of days, a gauge's mean of days
    two = panel.window_sums("requests", stamps[0], day, "detector")
    assert np.allclose(two / panel.window_sums("requests", stamps[0], day, "actual"), 1.05)
