"""Bring your own series: ``--kpis FILE.csv`` (a timestamp column plus one numeric column per KPI,
any regular frequency — daily, hourly, 30-minute) with optional ``--events FILE.json``.

The events file is a list of ``{"start", "end"}`` windows, optionally with ``event_id``, ``type``,
``expected`` (bool), and ``kpi`` + ``direction`` ("up"/"down"): with both, strict scoring requires
that KPI and direction; without them any KPI counts. An end given as a date covers that whole day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shocklab.errors import InputError

from .context import DataSet
from .loading import event_window, read_json, read_table

TIME_COLUMNS = ("timestamp", "date", "ds", "time", "datetime")


def load_kpis_file(path: str | Path, events_path: str | Path | None = None) -> DataSet:
    """Validate an external KPI table into a DataSet whose ``tables["kpis_daily"]`` is ready."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: KPI file not found")
    df = read_table(path)
    if df.empty:
        raise InputError(f"{path}: table is empty")
    tcol = next((c for c in df.columns if str(c).lower() in TIME_COLUMNS), df.columns[0])
    kpis = [c for c in df.columns if c != tcol]
    if not kpis:
        raise InputError(f"{path}: no KPI columns besides the timestamp column {tcol!r}")
    ts = df[tcol]
    if ts.isna().any():
        raise InputError(f"{path}: column {tcol!r} has an empty value (data row {int(np.flatnonzero(ts.isna())[0]) + 1})")
    try:
        ts = pd.to_datetime(ts, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: column {tcol!r} is not a timestamp ({str(exc).splitlines()[0]})") from None
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    ts = ts.astype("datetime64[ns]")
    dup = ts.duplicated()
    if dup.any():
        raise InputError(f"{path}: column {tcol!r}: duplicate timestamp {ts[dup].iloc[0]}")
    if not ts.is_monotonic_increasing:
        order = np.argsort(ts.to_numpy(), kind="stable")
        df, ts = df.iloc[order].reset_index(drop=True), ts.iloc[order].reset_index(drop=True)
    if len(ts) < 3:
        raise InputError(f"{path}: need at least 3 rows, got {len(ts)}")
    steps = ts.diff().dropna()
    step = steps.mode().iloc[0]
    if (steps != step).any():
        i = int(np.flatnonzero((steps != step).to_numpy())[0]) + 1
        raise InputError(f"{path}: column {tcol!r}: gap or irregular step at {ts.iloc[i]} "
                         f"(expected a step of {step}, got {steps.iloc[i - 1]})")
    out = pd.DataFrame({"date": ts, "dimension": "overall", "segment": "all"})
    for k in kpis:
        col = pd.to_numeric(df[k], errors="coerce")
        if df[k].isna().any():
            raise InputError(f"{path}: column {k!r} has an empty/NaN value (data row {int(np.flatnonzero(df[k].isna())[0]) + 1})")
        if col.isna().any():
            raise InputError(f"{path}: column {k!r} must be numeric, got {df[k][col.isna()].iloc[0]!r}")
        out[str(k)] = col.astype(float).to_numpy()
    ds = DataSet(path=None, tables={"kpis_daily": out}, source="kpis",
                 manifest={"scenario": path.stem, "kpi_file": str(path)})
    if events_path is not None:
        ds.truth_events = load_events_file(events_path, [str(k) for k in kpis])
    return ds


def load_events_file(path: str | Path, kpis: list[str]) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: events file not found")
    raw = read_json(path)
    if isinstance(raw, dict) and "events" in raw:
        raw = raw["events"]
    if not isinstance(raw, list):
        raise InputError(f"{path}: expected a list of events with start/end")
    events = []
    for i, ev in enumerate(raw):
        start, end = event_window(ev, f"{path}: [{i}]")
        kpi, direction = ev.get("kpi"), ev.get("direction")
        if kpi is not None and kpi not in kpis:
            raise InputError(f"{path}: [{i}].kpi: {kpi!r} is not a column of the KPI file ({', '.join(kpis)})")
        if direction not in (None, "up", "down"):
            raise InputError(f"{path}: [{i}].direction: must be 'up' or 'down', got {direction!r}")
        effects = {kpi: 1.0 if direction == "up" else -1.0} if kpi and direction else None
        events.append({"event_id": str(ev.get("event_id", f"X{i + 1:02d}")), "type": str(ev.get("type", "labelled")),
                       "expected": bool(ev.get("expected", False)), "start": start.isoformat(),
                       "end": end.isoformat(), "scope": {}, "effects": effects, "primary_kpi": kpi})
    return events
