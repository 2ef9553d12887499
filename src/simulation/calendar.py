"""Dates, seasonality profiles and the planned (expected) calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np

from .coltable import ColTable, strs
from .config import SimulationConfig


def dates(cfg: SimulationConfig) -> np.ndarray:
    """The period's days, ``datetime64[D]`` (numpy: the generation path imports no pandas)."""
    return np.arange(np.datetime64(cfg.period.start, "D"),
                     np.datetime64(cfg.period.end, "D") + 1)


def day_of_week(days: np.ndarray) -> np.ndarray:
    """Monday = 0 … Sunday = 6 (pandas' ``day_of_week``); 1970-01-01 was a Thursday."""
    return (days.astype("datetime64[D]").astype(np.int64) + 3) % 7


def day_of_year(days: np.ndarray) -> np.ndarray:
    """1 … 366 (pandas' ``day_of_year``)."""
    d = days.astype("datetime64[D]")
    return (d - d.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1


def iso_dates(days: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD`` text per day (``strftime("%Y-%m-%d")``), as an object array."""
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(object)


def traffic_profile(cfg: SimulationConfig, days: np.ndarray) -> np.ndarray:
    """[D] expected-traffic multiplier: trend × weekly × yearly (Q4 peak), 1.0 ≈ start level."""
    t_years = np.arange(len(days)) / 365.25
    trend = (1.0 + cfg.traffic.trend_annual) ** t_years
    weekly = np.asarray(cfg.traffic.weekly)[day_of_week(days)]
    weekly = weekly / np.mean(cfg.traffic.weekly)
    phase = 2 * np.pi * (day_of_year(days) - cfg.traffic.yearly_peak_doy) / 365.25
    yearly = 1.0 + cfg.traffic.yearly_amplitude * np.cos(phase)
    return trend * weekly * yearly


def conversion_profile(cfg: SimulationConfig, days: np.ndarray) -> np.ndarray:
    """[D] conversion multiplier: buyers convert better in the same season traffic peaks."""
    phase = 2 * np.pi * (day_of_year(days) - cfg.traffic.yearly_peak_doy) / 365.25
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


def marketing_calendar_table(cfg: SimulationConfig) -> ColTable:
    """Observable table: one row per planned day, by (date, name) (stable)."""
    rows = []
    for o in calendar_occurrences(cfg):
        scope = ",".join(f"{k}={v}" for k, v in o["scope"].items()) or "all"
        for k in range((o["end"] - o["start"]).days + 1):
            day = o["start"] + dt.timedelta(days=k)
            rows.append((day.isoformat(), o["name"], o["kind"], scope))
    rows.sort(key=lambda r: (r[0], r[1]))   # list.sort is stable
    names = ("date", "name", "kind", "scope")
    return ColTable({n: strs([r[i] for r in rows]) for i, n in enumerate(names)})
