"""``analytics.customers.pipeline.run(ctx)``: files, a JSON-ready summary, truth scores (the
evaluation stage after it), determinism,
and the action engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.analytics.customers.customers_synth import synthetic_store
from tests.configs import make_config

from analytics.context import DataSet, RunContext
from analytics.customers import actions, pipeline
from analytics.customers.config import ActionsConfig, CustomersConfig
from analytics.outputs import write_artefacts
from evaluation.truth import Truth, attach
from shocklab.configio import validate
from shocklab.hashing import canonical_json

ROOT = Path(__file__).resolve().parents[3]

WAVE_DAY = 300


def _cfg(**customers):
    return make_config(seed=3, customers=customers)


@pytest.fixture(scope="module")
def store():
    return synthetic_store(
        n_customers=1500, days=420, seed=4, churn_share=0.1, wave=(WAVE_DAY, 0.5)
    )


@pytest.fixture(scope="module")
def truth(store) -> Truth:
    """The truth the evaluation stage scores against (handed over by evaluation.truth.attach)."""
    _, customers = store
    start = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=WAVE_DAY)).date().isoformat()
    events = [
        {"event_id": "E01", "type": "churn_wave", "start": start, "end": start, "expected": False}
    ]
    return Truth(events=events, customers=customers)


@pytest.fixture(scope="module")
def dataset(store) -> DataSet:
    orders, _ = store
    return DataSet(
        path=Path("synthetic"),
        tables={"orders": orders},
        manifest={"scenario": "syn", "seed": 4},
    )


def _run(ds: DataSet, out: Path, **customers) -> RunContext:
    ctx = RunContext(config=_cfg(plots=False, **customers), data=ds, out_dir=out)
    pipeline.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    return ctx


def test_run_writes_files_and_a_json_ready_summary(dataset, truth, tmp_path):
    from evaluation import customer_scores

    ctx = attach(RunContext(config=_cfg(), data=dataset, out_dir=tmp_path), truth)
    pipeline.run(ctx)
    assert "truth" not in ctx.customers["churn"]   # the customers stage never sees the truth
    ctx.scorecard = {}
    customer_scores.stage(ctx)   # the evaluation stage that follows customers when truth exists
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    assert ctx.scorecard["customers"]["overall"]["p_alive_roc_auc"] > 0.7
    s = ctx.customers
    canonical_json(s)  # raises on NaN / inf / numpy types
    out = tmp_path / "customers"
    for f in (
        "segments.csv",
        "actions.csv",
        "cohort_retention.csv",
        "churn_metrics.json",
        "clv.csv",
        "clusters.csv",
        "monitor_series.csv",
        "alerts.jsonl",
        "truth_scores.json",
    ):
        assert (out / f).is_file(), f
    for p in ("customers_segments.png", "customers_rfm_scatter.png", "customers_cohorts.png",
              "customers_churn_roc.png", "customers_monitor.png", "customers_churn_reliability.png",
              "customers_p_alive_reliability.png"):
        assert (tmp_path / "plots" / p).is_file(), p
    assert sum(s["segments"].values()) == s["customers"] == sum(s["actions"].values())
    assert s["churn"]["status"] == "ok" and s["churn"]["truth"]["random_forest_roc_auc"] > 0.7
    ts = json.loads((out / "truth_scores.json").read_text())
    assert ts["overall"]["rate_spearman"] > 0.4 and ts["overall"]["p_alive_roc_auc"] > 0.7
    assert s["clv"]["status"] == "ok" and s["clv"]["unscored_customers"] == 0
    assert "truth" not in s["clv"]  # truth scores go to the scorecard, not to insights
    rel = s["churn"]["calibration"]["reliability"]
    assert sum(b["customers"] for b in rel) == s["churn"]["calibration"]["customers"]
    (wave,) = s["monitor"]["churn_waves"]
    assert wave["detected"] and wave["delay_days"] >= 0
    assert (
        s["monitor"]["mode"] == "replay"
        and s["monitor"]["alerts"][0]["date"] == wave["first_alert_date"]
    )
    acts = pd.read_csv(out / "actions.csv")
    assert acts["reason"].str.len().gt(10).all() and len(acts) == s["customers"]


def test_run_is_deterministic(dataset, tmp_path):
    a = _run(dataset, tmp_path / "a")
    b = _run(dataset, tmp_path / "b")
    for f in ("segments.csv", "actions.csv", "churn_metrics.json", "clv.csv", "clusters.csv",
              "cohort_retention.csv", "monitor_series.csv"):
        assert (tmp_path / "a" / "customers" / f).read_bytes() == (
            tmp_path / "b" / "customers" / f
        ).read_bytes(), f
    assert a.customers == b.customers  # no timings in the summary: it goes into insights.json


def test_daily_mode_with_persistent_state(dataset, tmp_path):
    """``run_analysis.py --as-of`` sets ctx.as_of; a second run of the same day does not resend."""
    replay = _run(dataset, tmp_path / "replay", monitor={"segments": ["At Risk"]})
    day = replay.customers["monitor"]["alerts"][0]["date"]  # the day replay alerts first
    state = str(tmp_path / "state" / "customers.sqlite")
    ctx = RunContext(
        config=_cfg(plots=False, monitor={"state_path": state, "segments": ["At Risk"]}),
        data=dataset,
        out_dir=tmp_path / "r1",
    )
    ctx.as_of = day
    pipeline.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    m = ctx.customers["monitor"]
    # daily mode keeps enough history that its judgement of the day equals the replay's
    assert m["mode"] == "daily" and m["flagged_days"] == 1 and m["decisions"]["sent"] == 1
    # every model sees the data as of that morning: nothing later
    assert ctx.customers["end_date"] == ctx.customers["as_of"] == day
    seen = dataset.tables["orders"].query(f"order_date <= '{day}' and status != 'cancelled'")
    assert ctx.customers["customers"] == seen["customer_id"].nunique()
    ctx2 = RunContext(config=ctx.config, data=dataset, out_dir=tmp_path / "r2")
    ctx2.as_of = day
    pipeline.run(ctx2)
    write_artefacts(ctx2)  # the files, as analytics.outputs writes them
    assert ctx2.customers["monitor"]["decisions"] == {
        "sent": 0,
        "already_sent": 1,
        "cooldown": 0,
        "ongoing": 0,
    }


def test_disabled_section_and_kpi_only_input(dataset, tmp_path):
    ctx = RunContext(config=_cfg(enabled=False), data=dataset, out_dir=tmp_path)
    pipeline.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    assert ctx.customers == {"enabled": False}
    kpis = DataSet(path=None, tables={"kpis_daily": pd.DataFrame()}, source="kpis")
    ctx = RunContext(config=_cfg(), data=kpis, out_dir=tmp_path)
    pipeline.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    assert ctx.customers["status"] == "skipped: the input has no orders table"


def test_action_rules_first_match_with_reasons():
    cfg = validate(ActionsConfig, {"rules": [
        {"action": "urgent VIP call", "min_churn_risk": 0.5, "min_value_pct": 0.9},
        {"action": "win-back offer", "segments": ["At Risk"], "min_churn_risk": 0.5},
        {"action": "cross-sell", "segments": ["Champions"], "max_churn_risk": 0.3},
    ]}, "analysis.yaml")
    df = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"],
                       "segment": ["At Risk", "At Risk", "Champions", "Champions", "Lost"],
                       "churn_risk": [0.8, 0.8, 0.1, np.nan, 0.9],
                       "value_pct": [0.95, 0.5, 0.5, 0.5, 0.2]})
    out = actions.assign_actions(df, cfg)
    assert out["action"].tolist() == [
        "urgent VIP call",
        "win-back offer",
        "cross-sell",
        "cross-sell",
        "no action",
    ]
    assert out["reason"][0] == ("churn risk >= 0.5, value in top 10% "
                                "(segment At Risk, churn risk 0.8, value percentile 95)")
    assert out["reason"][4].startswith("no rule matched")
    assert out["rule"].tolist() == [0, 1, 2, 2, -1]
    # no churn model scored d: the rules read its risk as 0, the reason does not claim 0.0
    assert out["reason"][3] == ("segment in Champions, churn risk <= 0.3 "
                                "(segment Champions, churn risk unknown, value percentile 50)")


def test_a_lift_rule_without_any_churn_model_names_no_base_rate_of_zero():
    cfg = validate(ActionsConfig, {"rules": [
        {"action": "cross-sell", "max_churn_lift": 1.0},
    ]}, "analysis.yaml")
    df = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["Champions", "Lost"],
                       "churn_risk": [np.nan, np.nan], "value_pct": [0.5, 0.2]})
    out = actions.assign_actions(df, cfg)
    assert out["action"].tolist() == ["cross-sell", "cross-sell"]  # unknown risk reads as 0
    assert out["reason"][0] == ("churn risk <= 1x the store's base rate (unknown) "
                                "(segment Champions, churn risk unknown, value percentile 50)")


def test_default_actions_follow_overdue_p_alive_and_the_base_rate():
    """The audit's rows (store base churn rate ~0.91, P(no order in 60 days)): a Champion who
    ordered yesterday (p_alive 0.998, churn risk 0.73) got an "urgent VIP call" from a fixed 0.7
    cut-off, and an At-Risk 2-order customer gone 661 days (R = 1, where "Lost" begins) a
    win-back offer a Lost customer of the same recency does not get."""
    shipped = yaml.safe_load((ROOT / "config/analysis.yaml").read_text())["customers"]["actions"]
    cfg = validate(ActionsConfig, shipped, "analysis.yaml")
    assert cfg == CustomersConfig().actions  # the YAML shows the defaults
    n_base = 40  # the rest of the store: average customers at the base rate
    df = pd.DataFrame({
        "customer_id": ["yesterday", "gone661", "lost661", "lapsing", "hib", "champ"]
                       + [f"b{i}" for i in range(n_base)],
        "segment": ["Champions", "At Risk", "Lost", "Lapsing", "Hibernating", "Champions"]
                   + ["Lost"] * n_base,
        "churn_risk": [0.73, 0.97, 0.98, 0.80, 0.97, 0.60] + [0.92] * n_base,
        "value_pct": [0.99, 0.13, 0.09, 0.97, 0.30, 0.60] + [0.5] * n_base,
        "p_alive": [0.998, 0.06, 0.08, 0.55, 0.18, 0.95] + [0.1] * n_base,
        "overdue": [1.0, 7.5, np.nan, 2.0, np.nan, 0.5] + [np.nan] * n_base,
        "r_score": [5, 1, 1, 3, 2, 5] + [1] * n_base,
    })
    out = actions.assign_actions(df, cfg).set_index("customer_id")["action"]
    assert out["yesterday"] == "cross-sell"  # not an urgent call: the CLV model says still buying
    assert out["gone661"] == out["lost661"] == "no action"  # no win-back where Lost begins
    assert out["lapsing"] == "urgent VIP call"  # top value, 2x past own gap, p_alive 0.55
    assert out["hib"] == "win-back offer"  # R = 2, riskier than the store's average
    assert out["champ"] == "cross-sell"
    reason = actions.assign_actions(df, cfg).set_index("customer_id")["reason"]["hib"]
    assert "churn risk >= 1x the store's base rate 0.9" in reason and "R score 2-5" in reason


def test_action_reasons_are_the_per_customer_text():
    """Reasons are built once per distinct (rule, segment, risk, value) and mapped back: the text
    must be what one f-string per customer gives (risk to 2 decimals, NaN risk "unknown", a
    missing segment reads "nan")."""
    cfg = CustomersConfig().actions
    g = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "segment": g.choice(["At Risk", "Lapsing", "Champions", "New", "Lost", None], n),
        "churn_risk": np.where(g.random(n) < 0.05, np.nan, g.random(n)),
        "value_pct": g.random(n),
    })
    df.loc[:3, "churn_risk"] = [0.575, 0.005, 1.0, 0.0]
    out = actions.assign_actions(df, cfg)
    base = float(df["churn_risk"].mean())  # the store's base rate the lift rules name
    conds = [actions._conditions(r, base) for r in cfg.rules] + ["no rule matched"]
    risk = df["churn_risk"].round(2).astype(object).where(df["churn_risk"].notna(), "unknown")
    expect = [f"{conds[i]} (segment {s}, churn risk {r}, value percentile {v})"
              for i, s, r, v in zip(out["rule"].tolist(), df["segment"].astype(object).astype(str),
                                    risk.tolist(),
                                    (df["value_pct"] * 100).round(0).astype(int).tolist(),
                                    strict=True)]
    assert out["reason"].tolist() == expect


def test_daily_mode_defaults_to_persistent_state(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHOCKLAB_STATE_DIR", raising=False)
    ctx = RunContext(
        config=_cfg(
            plots=False,
            churn={"enabled": False},
            clv={"enabled": False},
            clusters={"enabled": False},
        ),
        data=dataset,
        out_dir=tmp_path / "run",
    )
    ctx.as_of = "2024-11-20"
    pipeline.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    assert ctx.customers["monitor"]["state"] == "state/customers.sqlite"
    assert (tmp_path / "state" / "customers.sqlite").is_file()
    assert not (tmp_path / "run" / "customers" / "monitor.sqlite").exists()


def test_daily_state_follows_shocklab_state_dir(dataset, tmp_path, monkeypatch):
    """--as-of keeps its cooldowns where SHOCKLAB_STATE_DIR says, like the alert outbox: a cron
    job started from another directory must find yesterday's state, not start a new file in its
    working directory (and alert an ongoing incident again)."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv("SHOCKLAB_STATE_DIR", str(tmp_path / "shared"))
    ctx = RunContext(
        config=_cfg(plots=False, churn={"enabled": False}, clv={"enabled": False},
                    clusters={"enabled": False}),
        data=dataset,
        out_dir=tmp_path / "run",
    )
    ctx.as_of = "2024-11-20"
    pipeline.run(ctx)
    assert (tmp_path / "shared" / "customers.sqlite").is_file()
    assert not (tmp_path / "elsewhere" / "state").exists()
    assert ctx.customers["monitor"]["state"] == str(tmp_path / "shared" / "customers.sqlite")


def test_attach_equals_the_left_merge():
    """Per-customer columns set side by side give the left merge's frame; other frames merge."""
    g = np.random.default_rng(2)
    ids = pd.Index([f"C{i:04d}" for i in range(50)], name="customer_id")
    table = pd.DataFrame({"customer_id": ids.to_numpy(), "x": g.random(50)})
    right = pd.DataFrame({"clv": g.random(50), "clv_source": ["model"] * 49 + ["historical"]},
                         index=ids)
    for r in (right, right.iloc[::-1], right.iloc[5:]):
        want = table.merge(r.rename_axis("customer_id").reset_index(), on="customer_id",
                           how="left")
        pd.testing.assert_frame_equal(pipeline._attach(table, r), want)


@pytest.mark.parametrize("as_of", [None, "2024-12-01"])
def test_beside_thread_gives_the_same_outputs(dataset, tmp_path, monkeypatch, as_of):
    """CLV and the monitor on the opt-in spare-core thread (``_Beside``) or in order: the same
    files, plots, summary (key order included: it is insights.json) and models for customer
    scoring."""
    runs = {}
    for spare in (True, False):
        monkeypatch.setenv("SHOCKLAB_CUSTOMERS_BESIDE", "1")  # opt-in; spare_core decides
        monkeypatch.setattr(pipeline, "spare_core", lambda spare=spare: spare)
        out = tmp_path / str(spare)
        ctx = RunContext(config=_cfg(monitor={"state_path": str(out / "state.sqlite")}),
                         data=dataset, out_dir=out, as_of=as_of)
        pipeline.run(ctx)
        write_artefacts(ctx)
        runs[spare] = ctx
        assert ("customers.monitor_wait" in ctx.timings) and ("customers.clv_wait" in ctx.timings)
    a, b = runs[True], runs[False]
    assert json.dumps(a.customers) == json.dumps(b.customers)
    assert a.figures.keys() == b.figures.keys() and all(
        a.figures[k] == b.figures[k] for k in a.figures)
    files = sorted(p.relative_to(tmp_path / "True")
                   for p in (tmp_path / "True" / "customers").iterdir() if p.suffix != ".sqlite")
    assert files == sorted(p.relative_to(tmp_path / "False")
                           for p in (tmp_path / "False" / "customers").iterdir()
                           if p.suffix != ".sqlite")
    for f in files:
        assert (tmp_path / "True" / f).read_bytes() == (tmp_path / "False" / f).read_bytes(), f
    pd.testing.assert_frame_equal(a.customer_models["clv"]["table"],
                                  b.customer_models["clv"]["table"])


def test_a_failing_beside_job_fails_the_stage_after_the_thread_ended(dataset, tmp_path,
                                                                     monkeypatch):
    """An error in the monitor (on the thread) surfaces as the stage's error, and the stage has
    waited for the thread (nothing left writing into the run directory)."""
    monkeypatch.setenv("SHOCKLAB_CUSTOMERS_BESIDE", "1")
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)
    state = {}

    def broken(*args, **kwargs):
        import threading

        state["thread"] = threading.current_thread()
        raise RuntimeError("monitor broke")

    monkeypatch.setattr(pipeline.monitor, "replay", broken)
    ctx = RunContext(config=_cfg(plots=False), data=dataset, out_dir=tmp_path)
    with pytest.raises(RuntimeError, match="monitor broke"):
        pipeline.run(ctx)
    assert state["thread"].name.startswith("customers-beside")
    assert not state["thread"].is_alive()


def test_beside_thread_is_opt_in(monkeypatch):
    """Without SHOCKLAB_CUSTOMERS_BESIDE=1 the jobs run in order, whatever the cores."""
    monkeypatch.setattr(pipeline, "spare_core", lambda: True)
    monkeypatch.delenv("SHOCKLAB_CUSTOMERS_BESIDE", raising=False)
    import threading

    b = pipeline._Beside()
    try:
        assert b.submit(threading.current_thread).result() is threading.current_thread()
    finally:
        b.close()
    for on in ("1", "yes", " On "):   # read as SHOCKLAB_PARALLEL is
        monkeypatch.setenv("SHOCKLAB_CUSTOMERS_BESIDE", on)
        b = pipeline._Beside()
        try:
            assert b.submit(threading.current_thread).result() is not threading.current_thread()
        finally:
            b.close()
    monkeypatch.setenv("SHOCKLAB_CUSTOMERS_BESIDE", "0")
    b = pipeline._Beside()
    try:
        assert b.submit(threading.current_thread).result() is threading.current_thread()
    finally:
        b.close()


def test_a_named_store_keeps_its_monitor_state_when_the_export_file_name_changes(
        dataset, tmp_path):
    """A transactions file's monitor namespace was its file name, so a daily export named by date
    (orders_2025-03-01.csv, orders_2025-03-02.csv …) was a new data set every day and the same
    alert went to Slack again each morning. ``customers.monitor.namespace`` names the store."""
    replay = _run(dataset, tmp_path / "replay", monitor={"segments": ["At Risk"]})
    day = replay.customers["monitor"]["alerts"][0]["date"]

    def daily(name: str, out: str, **monitor) -> dict:
        ds = DataSet(path=tmp_path / name, tables=dataset.tables, manifest={},
                     source="transactions")
        state = str(tmp_path / "state" / "customers.sqlite")
        ctx = RunContext(config=_cfg(plots=False, monitor={
            "state_path": state, "segments": ["At Risk"], **monitor}), data=ds,
            out_dir=tmp_path / out)
        ctx.as_of = day
        pipeline.run(ctx)
        return ctx.customers["monitor"]

    first = daily("orders_a.csv", "r1", namespace="shop-uk")
    assert first["namespace"] == "shop-uk" and first["decisions"]["sent"] == 1
    again = daily("orders_b.csv", "r2", namespace="shop-uk")  # the next export, renamed
    assert again["decisions"]["sent"] == 0 and again["decisions"]["already_sent"] == 1
    # without a name the file name decides: another file is another store (its own alert)
    other = daily("orders_c.csv", "r3")
    assert other["namespace"] == "transactions:orders_c.csv" and other["decisions"]["sent"] == 1


def test_daily_mode_stores_no_days_before_the_data(dataset, tmp_path):
    """--as-of early in a file wrote monitor_series.csv rows (0 customers, 0 watched) for the
    ~210 days before the first order: the monitor chart showed months of an empty store."""
    first = pd.Timestamp(dataset.tables["orders"]["order_date"].min()).normalize()
    day = (first + pd.Timedelta(days=120)).date().isoformat()
    ctx = RunContext(config=_cfg(plots=False, churn={"enabled": False}, clv={"enabled": False},
                                 clusters={"enabled": False},
                                 monitor={"state_path": str(tmp_path / "m.sqlite")}),
                     data=dataset, out_dir=tmp_path / "r")
    ctx.as_of = day
    pipeline.run(ctx)
    write_artefacts(ctx)
    series = pd.read_csv(tmp_path / "r" / "customers" / "monitor_series.csv")
    assert pd.to_datetime(series["date"]).min() == first
    assert series["date"].max() == day


def test_segments_csv_keeps_its_documented_columns_on_a_tiny_store_or_with_clv_off(
        dataset, tmp_path):
    """(audit-custnum) A two-customer transactions file (clusters need 3) wrote segments.csv
    without `cluster`, and `customers.clv.enabled: false` without `clv`, `p_alive`,
    `clv_source`: a consumer reading docs/customers.md's columns broke on them. They are now
    there, empty."""
    orders = dataset.tables["orders"]
    two = orders[orders["customer_id"].isin(orders["customer_id"].drop_duplicates()[:2])]
    tiny = DataSet(path=Path("tiny"), tables={"orders": two}, manifest={"scenario": "t"})
    full = pd.read_csv(_run(dataset, tmp_path / "full").out_dir / "customers" / "segments.csv")
    for name, ds, kw in (("tiny", tiny, {}), ("noclv", dataset, {"clv": {"enabled": False}})):
        seg = pd.read_csv(_run(ds, tmp_path / name, **kw).out_dir / "customers" / "segments.csv")
        assert list(seg.columns) == list(full.columns), name


def test_two_stores_exporting_the_same_file_name_are_warned_about(dataset, tmp_path, caplog):
    """Two shops' exports share a file name (Shopify names every store's 'orders_export.csv'):
    the monitor state took them for one store — shop B's churn alert was read as shop A's
    ongoing incident (or already sent, or in A's cooldown) and never reached Slack, silently. The
    state now remembers which file a derived namespace came from and warns when another file
    takes it; the same file again, or a named store, is not warned about."""
    replay = _run(dataset, tmp_path / "replay", monitor={"segments": ["At Risk"]})
    day = replay.customers["monitor"]["alerts"][0]["date"]
    state = str(tmp_path / "state" / "customers.sqlite")

    def daily(path: Path, out: str, **monitor) -> dict:
        ds = DataSet(path=path, tables=dataset.tables, manifest={}, source="transactions")
        ctx = RunContext(config=_cfg(plots=False, monitor={
            "state_path": state, "segments": ["At Risk"], **monitor}), data=ds,
            out_dir=tmp_path / out)
        ctx.as_of = day
        caplog.clear()
        with caplog.at_level("WARNING"):
            pipeline.run(ctx)
        return ctx.customers["monitor"]

    a, b = tmp_path / "shop-a" / "orders.csv", tmp_path / "shop-b" / "orders.csv"
    assert daily(a, "r1")["decisions"]["sent"] == 1 and "namespace" not in caplog.text
    assert daily(a, "r2")["decisions"]["already_sent"] == 1 and "namespace" not in caplog.text
    got = daily(b, "r3")
    assert got["namespace"] == "transactions:orders.csv" and got["decisions"]["sent"] == 0
    msg = [r.getMessage() for r in caplog.records if "two stores" in r.getMessage()]
    assert len(msg) == 1 and str(a) in msg[0] and str(b) in msg[0]
    assert "--set customers.monitor.namespace=" in msg[0]
    daily(b, "r4")  # the file that took the name keeps it: said once
    assert "two stores" not in caplog.text
    daily(a, "r5", namespace="shop-a")  # a named store: its own state, nothing to say
    assert "two stores" not in caplog.text


def test_a_store_whose_every_order_was_cancelled_skips_the_customer_models(dataset, tmp_path):
    """basket.cancel_rate 1 (valid) leaves no completed order: the stage raised 'orders: no
    completed orders … to compute RFM on' (exit 2 after the whole analysis, naming no setting).
    Now the models are skipped, said in the summary, and nothing is written under customers/
    (edge-worlds audit)."""
    orders = dataset.tables["orders"].assign(status="cancelled")
    ds = DataSet(path=Path("synthetic"), tables={"orders": orders}, manifest=dataset.manifest)
    ctx = _run(ds, tmp_path)
    assert ctx.customers == {"enabled": True, "status": "skipped: no completed order"}
    assert not (tmp_path / "customers").exists()


def test_cohorts_run_to_the_data_end_not_to_the_last_order(dataset, tmp_path):
    """A store whose orders stopped two months before its traffic did (or an --as-of day in a
    closure): the cohort table ended at the last order's month, the months after it NaN ("not
    reached") where they were observed with nobody coming back (0)."""
    orders = dataset.tables["orders"]
    d = pd.to_datetime(orders["order_date"])
    stop = (d.max() - pd.DateOffset(months=3) + pd.offsets.MonthEnd(0)).normalize()
    kept = orders[d <= stop]
    traffic = pd.DataFrame({"date": pd.date_range(stop, d.max().normalize(), freq="D")})
    ds = DataSet(path=Path("synthetic"), tables={"orders": kept, "website_traffic": traffic},
                 manifest={"scenario": "syn", "seed": 4})
    ctx = RunContext(config=_cfg(plots=False, monitor={"enabled": False},
                                 clv={"enabled": False}, churn={"enabled": False},
                                 clusters={"enabled": False}),
                     data=ds, out_dir=tmp_path)
    pipeline.run(ctx)
    m = ctx.customer_tables["cohort_retention"]
    first = pd.Period(m.index[0], "M")
    age = (pd.Period(stop, "M") - first).n  # the first cohort's age in the last month of orders
    assert m.iloc[0][age] > 0
    assert m.iloc[0][[age + 1, age + 2]].tolist() == [0.0, 0.0]  # observed: nobody came back


def test_the_monitor_says_which_days_it_could_judge(dataset, tmp_path):
    """A few weeks of data (a 28-day world with a 50 % churn wave): the monitor judged no day
    (all warm-up) and insights.json said only alerts [] and flagged_days 0 — read as a store
    without churn. It now gives judged_days / judged_from and a note when nothing was judged."""
    orders = dataset.tables["orders"]
    d = pd.to_datetime(orders["order_date"])
    short = DataSet(path=Path("synthetic"), tables={"orders": orders[d < d.min() + pd.Timedelta(
        days=40)]}, manifest={"scenario": "syn-short", "seed": 4})
    m = _run(short, tmp_path / "short", clv={"enabled": False}).customers["monitor"]
    assert m["judged_days"] == 0 and m["judged_from"] is None
    assert "no day judged" in m["note"] and "the data is shorter" in m["note"]
    ctx = _run(dataset, tmp_path / "long", clv={"enabled": False})
    m = ctx.customers["monitor"]
    assert "note" not in m and m["judged_days"] > 200
    series = ctx.customer_tables["monitor_series"]
    # every flagged day is a judged one, and judging starts no earlier than z exists
    first_z = series.loc[series["z"].notna(), "date"].min()
    assert pd.Timestamp(m["judged_from"]) >= first_z
    flagged = series.loc[series["severity"].notna(), "date"]
    assert len(flagged) and (flagged >= pd.Timestamp(m["judged_from"])).all()
    early = _cfg(plots=False, clv={"enabled": False},
                 monitor={"state_path": str(tmp_path / "state.sqlite")})
    day = (d.min() + pd.Timedelta(days=30)).date().isoformat()
    ctx = RunContext(config=early, data=dataset, out_dir=tmp_path / "asof", as_of=day)
    pipeline.run(ctx)
    m = ctx.customers["monitor"]
    assert m["judged_days"] == 0 and "the --as-of day is earlier" in m["note"]


def test_customers_seed_seeds_the_customer_models_when_set(dataset, tmp_path, monkeypatch):
    """`customers.seed` was documented as 'used when the analysis has no top-level seed', but
    the top-level seed always has a value (0): it never acted. Set, it seeds the customer models
    (kmeans, churn); 0 (shipped) leaves them on the top-level seed, as before."""
    seen: list[int] = []
    real = pipeline.churn.run_churn

    def spy(orders, end, cfg, seed):
        seen.append(seed)
        return real(orders, end, cfg, seed)

    monkeypatch.setattr(pipeline.churn, "run_churn", spy)
    _run(dataset, tmp_path / "a")            # _cfg: top-level seed 3, customers.seed unset
    _run(dataset, tmp_path / "b", seed=11)
    _run(dataset, tmp_path / "c", seed=0)    # 0 = the top-level seed
    assert seen == [3, 11, 3]
    assert (tmp_path / "a" / "customers" / "clusters.csv").read_bytes() != (
        tmp_path / "b" / "customers" / "clusters.csv").read_bytes()
