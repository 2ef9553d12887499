"""Fixtures for the detection-pipeline tests: small hand-made data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.analytics.synth import Shock, Synth, make_data_dir


@pytest.fixture
def plotted(monkeypatch):
    """The figures ``analytics.report`` draws, in order (each still written as the run would)."""
    from analytics import report

    figs = []
    real = report._png

    def keep(fig):
        figs.append(fig)
        return real(fig)

    monkeypatch.setattr(report, "_png", keep)
    return figs


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """120 days, two shocks: paid channel at 30 % for 3 days (day 70), everything × 2.5 on day
    100."""
    return make_data_dir(tmp_path_factory.mktemp("synth") / "data",
                         Synth(shocks=[Shock("E01", 70, 3, 0.3, "paid", type="channel_outage"),
                                       Shock("E02", 100, 2, 2.5, type="flash_sale")],
                               calendar_days=[40]))


def spike_series(n: int = 150, spike_at: int = 120, factor: float = 1.6, seed: int = 3,
                 kpis: tuple[str, ...] = ("revenue", "orders"), freq: str = "D") -> pd.DataFrame:
    """Long detector input: weekly-seasonal noisy series with one upward spike per KPI."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=n, freq=freq)
    frames = []
    for i, k in enumerate(kpis):
        level = 1000.0 * (i + 1)
        v = level * (1 + 0.1 * np.sin(2 * np.pi * np.arange(n) / 7)) * (1 + rng.normal(0, 0.02, n))
        v[spike_at] *= factor
        frames.append(
            pd.DataFrame(
                {"date": dates, "kpi": k, "dimension": "overall", "segment": "all", "value": v}
            )
        )
        base = level * (1 + 0.1 * np.sin(2 * np.pi * np.arange(n) / 7))
        frames[-1]["baseline"] = base
    return pd.concat(frames, ignore_index=True)
