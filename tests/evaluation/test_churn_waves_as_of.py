"""An `--as-of` run judges the At-Risk monitor on one day, yet its insights
(`customers.monitor.churn_waves`) listed a churn wave that starts weeks after that day as
`detected: false`: the small scenario as of 2025-04-30 reported its 2025-06-08 wave E08 as a miss,
which the monitor could not have seen. A wave after the judged day is left out."""

from __future__ import annotations

from types import SimpleNamespace

from evaluation.customer_scores import stage


def _ctx(end_date: str) -> SimpleNamespace:
    events = [{"event_id": "E01", "type": "churn_wave", "start": "2025-02-01"},
              {"event_id": "E08", "type": "churn_wave", "start": "2025-06-08"},
              {"event_id": "E02", "type": "site_outage", "start": "2025-03-01"}]
    alerts = [{"date": "2025-02-10", "segment": "Lapsing"}]
    summary = {"end_date": end_date, "monitor": {"alerts": alerts}}
    return SimpleNamespace(truth=SimpleNamespace(customers=None, events=events, path=None),
                           customers=summary, customer_models={}, scorecard=None)


def test_a_wave_after_the_as_of_day_is_not_reported_as_missed():
    ctx = _ctx("2025-04-30")
    stage(ctx)
    waves = ctx.customers["monitor"]["churn_waves"]
    assert [w["event_id"] for w in waves] == ["E01"]
    assert waves[0]["detected"] and waves[0]["delay_days"] == 9


def test_a_full_run_still_scores_every_wave():
    ctx = _ctx("2025-06-30")
    stage(ctx)
    waves = {w["event_id"]: w["detected"] for w in ctx.customers["monitor"]["churn_waves"]}
    assert waves == {"E01": True, "E08": False}


def test_a_daily_run_leaves_out_waves_that_started_before_its_day():
    """(audit-custnum) A daily run's alerts are its one judged day's: the default world as of
    2025-06-30 listed wave E10 of 2025-03-11 (alerted 8 days after its start by a replay) as
    `detected: false`. Only a wave starting on the judged day can be scored there."""
    ctx = _ctx("2025-04-30")
    ctx.customers["as_of"] = "2025-04-30"
    ctx.customers["monitor"] |= {"mode": "daily", "alerts": []}
    ctx.truth.events.append({"event_id": "E09", "type": "churn_wave", "start": "2025-04-30"})
    stage(ctx)
    waves = ctx.customers["monitor"]["churn_waves"]
    assert [w["event_id"] for w in waves] == ["E09"]
    assert waves[0]["detected"] is False


def test_a_replay_still_scores_waves_from_the_data_start():
    ctx = _ctx("2025-04-30")
    ctx.customers["monitor"]["mode"] = "replay"
    stage(ctx)
    assert [w["event_id"] for w in ctx.customers["monitor"]["churn_waves"]] == ["E01"]
