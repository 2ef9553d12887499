"""Alert delivery across stores and modes (audit of 2026-12-05): a pending alert is retried only
to its own store's sinks, a replay counts what daily runs delivered (and the other way round), and
a new --as-of day before the latest judged one is refused (a day run again is still allowed)."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.analytics.customers.customers_synth import synthetic_store

from analytics.alerts import Dispatcher, LinkedOutbox
from analytics.customers import monitor
from analytics.customers.config import CustomersConfig
from analytics.customers.store import DeliveryStore, MonitorStore
from shocklab.errors import InputError


class Recorder:
    name = "slack"
    durable = True

    def __init__(self, fail: bool = False):
        self.sent: list[str] = []
        self.fail = fail

    def send(self, alert):
        if self.fail:
            raise RuntimeError("HTTP 500")
        self.sent.append(alert["alert_id"])


def _alert(ns: str, day: str = "2025-06-17") -> dict:
    return {"alert_id": f"{ns}:Lapsing:critical:{day}", "namespace": ns, "segment": "Lapsing",
            "date": day}


def test_a_pending_alert_is_retried_only_to_its_own_store(tmp_path):
    with DeliveryStore(tmp_path / "alerts.sqlite") as box:
        Dispatcher([Recorder(fail=True)], outbox=box).send(_alert("shopA"))
        other = Recorder()
        got = Dispatcher([other], outbox=box).retry_pending("shopB")
        assert other.sent == [] and got == {"sent": 0, "pending": 0}   # was sent to shopB's hook
        assert box.status("slack", "shopA:Lapsing:critical:2025-06-17") == "pending"
        own = Recorder()
        assert Dispatcher([own], outbox=box).retry_pending("shopA") == {"sent": 1, "pending": 0}
        assert own.sent == ["shopA:Lapsing:critical:2025-06-17"]


def test_a_delivery_recorded_by_the_other_mode_is_not_sent_again(tmp_path):
    """Daily runs record deliveries in customers.sqlite, a replay in alerts.sqlite: a replay
    after daily runs re-sent every alert they had delivered (same ids)."""
    daily, replay = tmp_path / "customers.sqlite", tmp_path / "alerts.sqlite"
    with MonitorStore(daily) as store:
        Dispatcher([Recorder()], outbox=store).send(_alert("shop"))   # delivered by a daily run
    with DeliveryStore(replay) as box:
        rec = Recorder()
        disp = Dispatcher([rec], outbox=LinkedOutbox(box, daily))
        disp.send(_alert("shop"))
        assert rec.sent == [] and disp.skipped == 1
        assert box.status("slack", "shop:Lapsing:critical:2025-06-17") == "sent"
        # pending here but delivered there: not retried either
        Dispatcher([Recorder(fail=True)], outbox=box).send(_alert("shop", "2025-06-19"))
    with MonitorStore(daily) as store:
        Dispatcher([Recorder()], outbox=store).send(_alert("shop", "2025-06-19"))
    with DeliveryStore(replay) as box:
        rec = Recorder()
        assert Dispatcher([rec], outbox=LinkedOutbox(box, daily)).retry_pending("shop") == {
            "sent": 0, "pending": 0}
        assert rec.sent == []
    # no other file (yet): as before
    with DeliveryStore(tmp_path / "x.sqlite") as box:
        rec = Recorder()
        Dispatcher([rec], outbox=LinkedOutbox(box, tmp_path / "missing.sqlite")).send(
            _alert("shop"))
        assert rec.sent == ["shop:Lapsing:critical:2025-06-17"]


def test_a_new_day_before_the_latest_judged_one_is_refused(tmp_path):
    orders, _ = synthetic_store(n_customers=600, days=240, seed=3)
    cfg = CustomersConfig()
    last = pd.Timestamp(pd.to_datetime(orders["order_date"]).max()).normalize()
    later, earlier = last - pd.Timedelta(days=2), last - pd.Timedelta(days=9)
    with MonitorStore(tmp_path / "d.sqlite") as s:
        monitor.daily(orders, later, cfg.monitor, cfg.rfm, s, None, "syn")
        with pytest.raises(InputError, match=r"already judged 'syn' up to .*new days are judged "
                                             r"in order"):
            monitor.daily(orders, earlier, cfg.monitor, cfg.rfm, s, None, "syn")
        monitor.daily(orders, later, cfg.monitor, cfg.rfm, s, None, "syn")       # again: fine
        monitor.daily(orders, earlier, cfg.monitor, cfg.rfm, s, None, "other")   # other store
        monitor.daily(orders, last, cfg.monitor, cfg.rfm, s, None, "syn")        # onwards


def test_a_late_delivery_is_reported_and_its_old_error_cleared(tmp_path):
    """A run whose retry delivered an earlier run's alert said nothing of it, and the outbox
    row kept the failed attempt's error beside status 'sent'."""
    orders, _ = synthetic_store(n_customers=600, days=240, seed=3)
    cfg = CustomersConfig()
    last = pd.Timestamp(pd.to_datetime(orders["order_date"]).max()).normalize()
    with MonitorStore(tmp_path / "d.sqlite") as s:
        Dispatcher([Recorder(fail=True)], outbox=s).send(_alert("syn"))
        row = s.conn.execute("SELECT status, last_error FROM outbox").fetchone()
        assert row == ("pending", "RuntimeError")   # a non-SendError is named by its type
        rec = Recorder()
        res = monitor.daily(orders, last, cfg.monitor, cfg.rfm, s, Dispatcher([rec], outbox=s),
                            "syn")
        assert res.delivered_late == 1 and rec.sent[0] == "syn:Lapsing:critical:2025-06-17"
        assert s.conn.execute("SELECT status, last_error FROM outbox WHERE alert_id=?",
                              ("syn:Lapsing:critical:2025-06-17",)).fetchone() == ("sent", None)
