"""Two daily ``--as-of`` runs on one monitor state (audit of 2026-12-05): started together, the
later day's run and an earlier day's both passed the "new days are judged in order" check before
either recorded its day, both judged, and one incident was alerted twice. The check and the
judging are now one step under the state file's lock: the second run waits, then is refused."""

from __future__ import annotations

import threading

import pandas as pd
from tests.analytics.customers.customers_synth import synthetic_store

from analytics.customers import monitor
from analytics.customers.config import CustomersConfig
from analytics.customers.store import MonitorStore
from shocklab.errors import InputError


def test_an_earlier_day_started_during_a_later_days_run_waits_and_is_refused(tmp_path,
                                                                             monkeypatch):
    orders, _ = synthetic_store(n_customers=600, days=240, seed=3)
    cfg = CustomersConfig()
    last = pd.Timestamp(pd.to_datetime(orders["order_date"]).max()).normalize()
    later, earlier = last - pd.Timedelta(days=2), last - pd.Timedelta(days=9)
    path = tmp_path / "customers.sqlite"
    MonitorStore(path).conn.close()   # created (and migrated) before the two runs

    inside, release, checked = threading.Event(), threading.Event(), threading.Event()
    judge = monitor.Monitor.judge_series

    def held(self, series, days=None):   # the later run stops mid-judging until released
        if days is not None and later in days:
            inside.set()
            release.wait(60)
        return judge(self, series, days)

    monkeypatch.setattr(monitor.Monitor, "judge_series", held)
    seen = MonitorStore.judged_days

    def judged_days(self, namespace):
        out = seen(self, namespace)
        if threading.current_thread().name == "earlier":
            checked.set()
        return out

    monkeypatch.setattr(MonitorStore, "judged_days", judged_days)
    outcome: dict[str, object] = {}

    def run(day: pd.Timestamp, name: str) -> None:
        try:
            with MonitorStore(path) as s:
                monitor.daily(orders, day, cfg.monitor, cfg.rfm, s, None, "syn")
            outcome[name] = "judged"
        except InputError as exc:
            outcome[name] = exc

    t1 = threading.Thread(target=run, args=(later, "later"), name="later")
    t1.start()
    assert inside.wait(60)
    t2 = threading.Thread(target=run, args=(earlier, "earlier"), name="earlier")
    t2.start()
    # without the lock the earlier run reads the judged days now, before the later one records
    # its day; with it, it cannot read them until the later run is done
    checked.wait(1.0)
    release.set()
    t1.join(120)
    t2.join(120)
    assert outcome["later"] == "judged"
    assert isinstance(outcome["earlier"], InputError), outcome
    assert "new days are judged in order" in str(outcome["earlier"])
    with MonitorStore(path) as s:
        assert s.judged_days("syn")[1] == {str(later.date())}


def test_a_memory_state_needs_no_lock():
    orders, _ = synthetic_store(n_customers=300, days=200, seed=2)
    cfg = CustomersConfig()
    last = pd.Timestamp(pd.to_datetime(orders["order_date"]).max()).normalize()
    with MonitorStore(":memory:") as s:
        res = monitor.daily(orders, last, cfg.monitor, cfg.rfm, s, None, "syn")
        assert s.judged_days("syn")[0] == last and res.judged is not None


