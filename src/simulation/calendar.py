"""Dates, seasonality profiles and the planned (expected) calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .config import SimulationConfig


def dates(cfg: SimulationConfig) -> pd.DatetimeIndex:
    return pd.date_range(cfg.period.start, cfg.period.end, freq="D")


def traffic_profile(cfg: SimulationConfig, days: pd.DatetimeIndex) -> np.ndarray:
    """[D] expected-traffic multiplier: trend × weekly × yearly (Q4 peak), 1.0 ≈ start level."""
    t_years = np.arange(len(days)) / 365.25
    trend = (1.0 + cfg.traffic.trend_annual) ** t_years
    weekly = np.asarray(cfg.traffic.weekly)[days.day_of_week]
    weekly = weekly / np.mean(cfg.traffic.weekly)
    phase = 2 * np.pi * (days.day_of_year.to_numpy() - cfg.traffic.yearly_peak_doy) / 365.25
    yearly = 1.0 + cfg.traffic.yearly_amplitude * np.cos(phase)
    return trend * weekly * yearly


def conversion_profile(cfg: SimulationConfig, days: pd.DatetimeIndex) -> np.ndarray:
    """[D] conversion multiplier: buyers convert better in the same season traffic peaks."""
    phase = 2 * np.pi * (days.day_of_year.to_numpy() - cfg.traffic.yearly_peak_doy) / 365.25
    return 1.0 + cfg.conversion.seasonal_amplitude * np.cos(phase)


def calendar_multipliers(cfg: SimulationConfig, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """[D, C] traffic and conversion multipliers of the planned calendar (kept in the twin)."""
    channels = list(cfg.channels)
    traffic = np.ones((n_days, len(channels)))
    conversion = np.ones((n_days, len(channels)))
    for entry in cfg.calendar:
        cmask = np.ones(len(channels), bool) if entry.channel is None else \
            np.array([c == entry.channel for c in channels])
        for first in entry.dates:
            s = (first - cfg.period.start).days
            e = min(s + entry.duration_days, n_days)
            traffic[s:e, cmask] *= 1 + entry.traffic_uplift
            conversion[s:e, cmask] *= 1 + entry.conversion_uplift
    return traffic, conversion


def calendar_occurrences(cfg: SimulationConfig) -> list[dict]:
    """One record per occurrence, ordered by start date (ids P01, P02 …)."""
    occ = []
    for entry in cfg.calendar:
        for first in entry.dates:
            last = min(first + dt.timedelta(days=entry.duration_days - 1), cfg.period.end)
            occ.append({"name": entry.name, "kind": entry.kind, "start": first, "end": last,
                        "scope": {"channel": entry.channel} if entry.channel else {},
                        "params": {"traffic_uplift": entry.traffic_uplift,
                                   "conversion_uplift": entry.conversion_uplift}})
    occ.sort(key=lambda o: (o["start"], o["name"]))
    for i, o in enumerate(occ, 1):
        o["event_id"] = f"P{i:02d}"
    return occ


def marketing_calendar_table(cfg: SimulationConfig) -> pd.DataFrame:
    """Observable table: one row per planned day."""
    rows = []
    for o in calendar_occurrences(cfg):
        scope = ",".join(f"{k}={v}" for k, v in o["scope"].items()) or "all"
        for day in pd.date_range(o["start"], o["end"], freq="D"):
            rows.append((day.date().isoformat(), o["name"], o["kind"], scope))
    df = pd.DataFrame(rows, columns=["date", "name", "kind", "scope"])
    return df.sort_values(["date", "name"], kind="stable").reset_index(drop=True)
