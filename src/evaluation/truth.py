"""The truth of a simulated data directory, read into the typed ``Truth`` object
(``shocklab.truth``): the event records (checked here, typed by ``TruthEvent`` on demand), the
shock-free baseline with the simulator's noise model (and the per-product null,
truth/product_null), the counterfactual twin's KPIs and the customers' latent parameters.

This is the only door to ``truth/`` (docs/ARCHITECTURE.md import rule 3): the entry points call
``find_truth`` and ``attach`` the result to the run context, where only evaluation stages (and,
until the oracle moves here, its baseline hand-over) read it. Analytics never imports this module.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.errors import OutOfBoundsDatetime
from pydantic import TypeAdapter, ValidationError

from analytics.context import EventWindow, RunContext
from analytics.loading import coerce, find_table, read_json, read_table
from shocklab.catalogue import NS_YEARS
from shocklab.errors import InputError, first_line
from shocklab.truth import SliceEffects, Truth, TruthEvent

__all__ = [
    "Truth", "TruthEvent", "attach", "find_truth", "has_truth", "load_truth", "read_truth_events",
    "run_data_dir",
]


def parse_events(raw: Any, source: str) -> list[TruthEvent]:
    if not isinstance(raw, list):
        raise InputError(f"{source}: expected a list of events")
    out = []
    for i, ev in enumerate(raw):
        try:
            out.append(TruthEvent.model_validate(ev))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{source}: event [{i}].{loc}: {first['msg']}") from None
    return out


def read_truth_events(path: Path) -> list[dict[str, Any]]:
    """truth/events.json as records; InputError naming the event without an id or window."""
    events = read_json(path)
    if not isinstance(events, list):
        raise InputError(f"{path}: expected a list of events")
    for i, ev in enumerate(events):
        if not isinstance(ev, dict) or "event_id" not in ev:
            raise InputError(f"{path}: event [{i}] lacks 'event_id'")
        where = f"{path}: event [{i}] ({ev['event_id']})"
        event_window(ev, where)
        _check_effects(ev, where)
    return events


_EFFECTS = TypeAdapter(dict[str, float | None])   # what scoring reads: KPI -> relative effect


def _check_effects(ev: dict[str, Any], where: str) -> None:
    """InputError naming the field when an event's effects are not what scoring reads (the
    container records by ``SliceEffects``, the model the simulator writes them with)."""
    for key in ("effects", "scope_effects"):
        if ev.get(key) is not None:
            try:
                _EFFECTS.validate_python(ev[key])
            except ValidationError:
                raise InputError(f"{where}: '{key}' must map each KPI to a number") from None
    cont = ev.get("container_effects")
    if cont is None:
        return
    if not isinstance(cont, list):
        raise InputError(f"{where}: 'container_effects' must be a list")
    for j, c in enumerate(cont):
        try:
            SliceEffects.model_validate(c)
        except ValidationError:
            raise InputError(f"{where}: container_effects[{j}] needs a 'dimension', a "
                             "'segment' and 'effects' mapping each KPI to a number") from None


def has_truth(data_dir: str | Path | None) -> bool:
    """Whether a data directory carries truth (cheap: reads nothing)."""
    return data_dir is not None and (Path(data_dir) / "truth" / "events.json").is_file()


def run_data_dir(run: Path, run_files: tuple[str, ...] = (),
                 truth_files: tuple[str, ...] = ()) -> Path:
    """The data directory a run directory was analysed from (run.json's ``data.path``), after
    checking that the run holds ``run_files`` and the data's ``truth/`` holds ``truth_files``:
    InputError (one line, exit 2) naming what is missing, for the benches that score a run
    against truth (a ``--kpis`` or ``--transactions`` run has none)."""
    meta = run / "run.json"
    if not meta.is_file():
        raise InputError(f"{run}: not a run directory (no run.json; run_analysis.py --out DIR "
                         "writes one)")
    raw = read_json(meta)
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict):
        raise InputError(f"{meta}: no 'data' mapping (not a run.json of run_analysis.py)")
    data = data.get("path")
    for name in run_files:
        if not (run / name).exists():
            raise InputError(f"{run}: no {name} in the run directory")
    missing = [n for n in truth_files if data is None or not (Path(data) / "truth" / n).is_file()]
    if missing:
        raise InputError(f"{run}: its data ({data or 'a --kpis file'}) has no truth/"
                         f"{missing[0]}: a run of a simulated world is needed (generate_data.py)")
    return Path(data)


_TRUTH_KEYS = ("date", "dimension", "segment", "channel")   # the truth tables' non-figure columns


def find_truth(data_dir: str | Path | None) -> Truth | None:
    """The truth of a data directory, or None when it has no ``truth/events.json``."""
    if not has_truth(data_dir):
        return None
    base = Path(data_dir) / "truth"
    tables: dict[str, pd.DataFrame | None] = {}
    for name in ("baseline_daily", "counterfactual_daily", "customers"):
        p = find_table(base, name)
        df = None
        if p is not None:
            df = read_table(p, {"customer_id": "id", "channel": "str"})
            if "date" in df.columns:
                df = coerce(df, {"date": "date"}, str(p))
            if name != "customers":   # a figure of text ('abc') was an internal error in the oracle
                nums = [c for c in df.columns if c not in _TRUTH_KEYS]
                df = coerce(df, dict.fromkeys(nums, "float"), str(p), allow_nan=tuple(nums))
        tables[name] = df
    noise = base / "noise_model.json"
    pn = find_table(base, "product_null")   # older truth layouts have none
    product_null = read_table(pn, {"product_id": "id", "category": "str"}) if pn else None
    ov = find_table(base, "order_value_null")   # older truth layouts have none
    order_values = (coerce(read_table(ov, {"scope": "str"}),
                           {"scope": "str", "value": "float", "p": "float"}, str(ov))
                    if ov else None)
    return Truth(
        events=read_truth_events(base / "events.json"),
        baseline=tables["baseline_daily"],
        counterfactual=tables["counterfactual_daily"],
        customers=tables["customers"],
        noise=read_json(noise) if noise.is_file() else None,
        product_null=product_null,
        order_values=order_values,
        path=Path(data_dir),
    )


def load_truth(data_dir: str | Path) -> Truth:
    """``find_truth``, but InputError when the directory has no truth; events are validated
    with ``TruthEvent``."""
    truth = find_truth(data_dir)
    if truth is None:
        raise InputError(
            f"{Path(data_dir) / 'truth'}: no truth/events.json (not a simulated data directory)"
        )
    parse_events(truth.events, str(Path(data_dir) / "truth" / "events.json"))
    return truth


def attach(ctx: RunContext, truth: Truth | None) -> RunContext:
    """Hand ``truth`` to the run: ``ctx.truth`` for the evaluation stages, ``ctx.has_truth``, and
    the event windows the plots shade (start, end, type, planned or not — no effects)."""
    ctx.truth = truth
    ctx.has_truth = truth is not None
    ctx.event_windows = [
        EventWindow(
            start=str(e["start"]),
            end=str(e["end"]),
            type=str(e.get("type", "")),
            expected=bool(e.get("expected")),
        )
        for e in (truth.events if truth is not None else [])
    ]
    return ctx


# a time of day in a date's text: 12:00, 2025-03-06T00, 2025-03-06 00, 2 pm
_TIME = re.compile(r":|\dT\d|\d\s+\d{1,2}$|\d\s*[AaPp]\.?[Mm]\.?$")


def end_is_day(ev: dict[str, Any]) -> bool:
    """Does an event's end cover its whole day? Only an end written as a date (no time of day:
    ``2025-03-06``, a ``datetime.date``) of a window not in NAB's layout, whose ends are file
    rows. An end written with a time is its instant, midnight too (``2015-09-16 00:00:00`` was
    stretched to the end of the 16th in a CSV or ShockLab's list, not in NAB's layout)."""
    if ev.get("type") == "nab_window":
        return False
    v = ev.get("end")
    if isinstance(v, dt.datetime):
        return False
    if isinstance(v, dt.date):
        return True
    if isinstance(v, np.datetime64):
        return np.datetime_data(v.dtype)[0] in ("Y", "M", "W", "D")
    return isinstance(v, str) and _TIME.search(v.strip()) is None


def _timestamp(ev: dict[str, Any], key: str, where: str) -> pd.Timestamp:
    v = ev[key]
    try:   # nanoseconds as every series is: year 0001 or 9999 was OverflowError, exit 3
        ts = pd.Timestamp(v).as_unit("ns")
    except (OutOfBoundsDatetime, OverflowError):
        raise InputError(f"{where}: {key} {v!r} is not a date between {NS_YEARS[0]} and "
                         f"{NS_YEARS[1]}") from None
    except (ValueError, TypeError) as exc:   # '2014-04-32 01:45': "day is out of range …"
        why = first_line(exc, 80).split(": ", 1)[0]   # pandas repeats the value after ': '
        raise InputError(f"{where}: {key} {v!r} is not a date ({why}; write "
                         "YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)") from None
    if pd.isna(ts):   # 'NaT', 'nat' text
        raise InputError(f"{where}: {key} {v!r} is not a date")
    return ts


def event_window(ev: dict[str, Any], where: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) of an event record; InputError naming ``where`` (and the field and value)
    when missing, unreadable or reversed."""
    if not isinstance(ev, dict) or "start" not in ev or "end" not in ev:
        raise InputError(f"{where}: each event needs 'start' and 'end'")
    for key in ("start", "end"):
        # a number was read as nanoseconds since 1970 ('no window overlaps … 1970-01-01T00:00:
        # 00.000012345'), null or '' as NaT ('NaT to NaT')
        v = ev[key]
        if isinstance(v, bool) or not isinstance(v, (str, dt.date, np.datetime64)) \
                or (isinstance(v, str) and not v.strip()):
            raise InputError(f"{where}: {key} must be a date (YYYY-MM-DD), got {v!r}")
    start, end = _timestamp(ev, "start", where), _timestamp(ev, "end", where)
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise InputError(f"{where}: start {ev['start']!r} and end {ev['end']!r}: give both with "
                         "a UTC offset or neither")
    if start.tzinfo is not None:   # UTC, as a KPI file's offsets are (naive comparisons)
        start, end = (t.tz_convert("UTC").tz_localize(None) for t in (start, end))
    # an end given as a day covers that day, as scoring reads it: a label
    # '2025-03-06 04:00,2025-03-06' was "end before start"; an end written with a time (NAB's
    # ['2014-04-11 16:15', '2014-04-11 00:00']) is not a day, and reversed
    if end < start and not (end_is_day(ev) and end + pd.Timedelta(days=1) > start):
        raise InputError(f"{where}: end {end} is before start {start}")
    return start, end
