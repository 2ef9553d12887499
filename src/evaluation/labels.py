"""Labelled windows for ``--kpis`` runs (``run_analysis.py --events FILE``) as the run's ``Truth``:
ShockLab's list of ``{"start", "end"}`` windows (optionally ``event_id``, ``type``, ``expected``,
``kpi`` + ``direction``), NAB's ``combined_windows.json`` (a mapping ``"<category>/<file>.csv" ->
[[start, end], ...]``; the entry for the KPI file's name is used) or one file's entry of it (a
list of ``[start, end]`` pairs), or a CSV with ``start,end`` columns (the same optional columns;
others are ignored with a warning naming them). An end written as a date covers that day (one
with a time, midnight too, is that instant: ``truth.end_is_day``, kept as ``end_is_day``). A file
that holds no window (a CSV header alone, ``[]``) is a series without labelled anomalies: every
incident is a false alarm, with a warning. NAB's ``combined_labels.json`` (anomaly timestamps,
not windows), one file's list of timestamps, per-row 0/1 labels and a KPI series are exit 2
saying what the file is and what to pass instead.

Labels are truth: they are read here, behind the wall, never by analytics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.context import DataSet
from analytics.external import PER_ROW_LABELS
from analytics.loading import read_json
from shocklab.errors import InputError, first_line
from shocklab.textfile import (
    COMPRESSIONS,
    UNREADABLE,
    csv_options,
    not_a_file,
    plain_suffix,
    refuse_binary,
    refuse_implicit_index,
    refuse_workbook,
)
from shocklab.truth import Truth

from .scoring import window_ends
from .truth import end_is_day, event_window

log = logging.getLogger("shocklab.analysis")


def labels_truth(path: str | Path, ds: DataSet) -> Truth:
    """The labelled windows of ``path`` for the KPI file loaded into ``ds``."""
    ing = ds.ingest
    with_offset: list[bool] = []
    events = load_events_file(path, ing.get("_kpis", []), kpi_file=ing.get("_file"),
                              names=ing.get("_names"), with_offset=with_offset,
                              day_first=ing.get("_day_first"))
    if ing.get("_utc_offset") and not any(with_offset) and events:
        # the KPI file's times lost their offset on the way to UTC; naive labels are read as UTC
        # (a window written in the file's local time missed its rows by the offset)
        log.warning("%s: the labels have no UTC offset and are read as UTC, while %s's timestamps "
                    "(offset %s) were converted to UTC: if the labels are in the file's local "
                    "time, write them with their offset", path, ing.get("_file"),
                    ing["_utc_offset"])
    inside, left_out = _inside_data(path, events, ds)
    _warn_overlaps(path, inside)
    return Truth(events=inside, left_out=left_out)


def _warn_overlaps(path: str | Path, events: list[dict[str, Any]]) -> None:
    """One warning line for labelled (unexpected) windows that overlap or repeat another: the NAB
    score and affiliation merge them into one window to find, while the headline and
    window_event count each (they were merged without a word)."""
    events = [e for e in events if not e.get("expected")]
    wins = sorted(zip((pd.Timestamp(e["start"]) for e in events), window_ends(events), events,
                      strict=True), key=lambda w: (w[0], w[1]))
    pairs, reach = [], None
    for start, end, e in wins:
        if reach is not None and start <= reach[0]:
            pairs.append((reach[1], e))
        if reach is None or end > reach[0]:
            reach = (end, e)
    if pairs:
        a, b = pairs[0]
        log.warning("%s: %d labelled window(s) overlap an earlier one, e.g. %s (%s to %s) and %s "
                    "(%s to %s): the NAB score and affiliation merge them into one window, the "
                    "headline and window_event count each", path, len(pairs), a["event_id"],
                    a["start"], a["end"], b["event_id"], b["start"], b["end"])


def _inside_data(path: str | Path, events: list[dict[str, Any]],
                 ds: DataSet) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The windows that hold data, and the records of those left out. Windows that all lie
    outside it (the wrong label file, a wrong year) are bad input: scored, every one would be a
    missed event and fail a --min-recall gate as if the detectors had. For the same reason a
    window wholly outside a file that others overlap (labels for a longer period than the
    export), or wholly inside a gap of it (no file row's period overlaps it: nothing there to
    detect, and the NAB score leaves it out), is left out, with a warning and a record in
    run.json ``input_checks.labels_left_out``: it was counted as missed (recall 0.5 for one
    window found of the two)."""
    kd = ds.tables.get("kpis_daily")
    if not events or kd is None or not len(kd):
        return events, []
    dates = pd.to_datetime(kd["date"])
    lo, hi = dates.min(), dates.max()
    step = pd.Timedelta(seconds=float(ds.ingest.get("step_seconds") or 0))
    last = hi + step if step > pd.Timedelta(0) else hi   # the last period holds its whole step
    # an end given as a day covers that day, as scoring reads it (2024-03-01 on hourly data
    # from 10:00 that day was "no labelled window overlaps the data", exit 2)
    outside = [e for e, end in zip(events, window_ends(events), strict=True)
               if not ((pd.Timestamp(e["start"]) < last or pd.Timestamp(e["start"]) <= hi)
                       and end >= lo)]
    if len(outside) == len(events):
        e = events[0]
        raise InputError(
            f"{path}: no labelled window overlaps the data ({lo} to {hi}); the first is "
            f"{e['start']} to {e['end']} — the wrong label file or year?"
        )
    out_ids = {e["event_id"] for e in outside}
    rest = [e for e in events if e["event_id"] not in out_ids]
    rows = ds.ingest.get("_raw_times")
    gaps = [] if rows is None else [e for e, ok in zip(rest, _hold_rows(rest, rows, step),
                                                       strict=True) if not ok]
    left = []
    for why, out in (("outside the data", outside), ("wholly in a gap of the data", gaps)):
        if out:
            log.warning("%s: %d labelled window(s) %s (%s to %s%s) left out of the scoring, "
                        "e.g. %s %s to %s", path, len(out), why, lo, hi,
                        ": no file row in them" if out is gaps else "", out[0]["event_id"],
                        out[0]["start"], out[0]["end"])
            left += [{"event_id": e["event_id"], "start": e["start"], "end": e["end"],
                      "why": why} for e in out]
    gap_ids = {e["event_id"] for e in gaps}
    inside = [e for e in rest if e["event_id"] not in gap_ids]
    if not inside:
        e = gaps[0]
        raise InputError(f"{path}: no labelled window holds a row of the data ({lo} to {hi}: "
                         f"they lie in its gaps, e.g. {e['start']} to {e['end']})")
    return inside, left


def _hold_rows(events: list[dict[str, Any]], rows: Any, step: pd.Timedelta) -> np.ndarray:
    """Per window, does a file row's period ``[t, t + step)`` overlap it (its end as scoring
    reads it)?"""
    rows = np.sort(np.asarray(rows).astype("datetime64[ns]"))
    if not len(rows) or not events:
        return np.zeros(len(events), dtype=bool)
    starts = pd.to_datetime([e["start"] for e in events]) - step
    ends = np.array(window_ends(events), dtype="datetime64[ns]")
    i = np.searchsorted(rows, starts.to_numpy("datetime64[ns]"),
                        side="right" if step > pd.Timedelta(0) else "left")
    return (i < len(rows)) & (rows[np.minimum(i, len(rows) - 1)] <= ends)


# the columns a labels CSV reads (the keys of ShockLab's JSON list)
LABEL_COLUMNS = ("start", "end", "event_id", "type", "expected", "kpi", "direction")
_NAB_WINDOWS = ("NAB's combined_windows.json ({\"<category>/<file>.csv\": [[start, end], ...]}, "
                "in NAB's labels/ folder)")


def _is_pair(w: Any) -> bool:
    return isinstance(w, (list, tuple)) and len(w) == 2


def nab_windows_problem(raw: Any) -> str | None:
    """What keeps parsed JSON ``raw`` from being NAB's combined_windows.json, in words that say
    what the file is instead (None: it is one). NAB's combined_labels.json has the same keys but
    each file's anomaly *timestamps*: read as windows it was "[…][0]: expected [start, end]"."""
    if isinstance(raw, list):
        if raw and all(_is_pair(w) for w in raw):
            return ("a list of [start, end] windows (one file's entry), not the mapping of every "
                    "file")
        return "a list (ShockLab's labels for one file), not NAB's mapping of every file"
    if not isinstance(raw, dict):
        return f"a JSON {type(raw).__name__}, not a mapping of files to windows"
    if "events" in raw:
        return "ShockLab's {\"events\": [...]} labels of one file, not NAB's mapping of every file"
    for key, wins in raw.items():
        if isinstance(wins, list) and any(isinstance(w, str) for w in wins):
            return ("NAB's combined_labels.json layout: each file's anomaly timestamps (e.g. "
                    f"[{key!r}][0] {wins[0]!r}), not the windows around them")
    if raw and not any(str(k).lower().endswith(".csv") for k in raw):
        return f"no '<category>/<file>.csv' key (keys look like {next(iter(raw))!r})"
    return None


def _nab_windows(wins: list[Any], path: Path, where: str) -> list[dict[str, Any]]:
    out = []
    for i, w in enumerate(wins):
        if not _is_pair(w):
            raise InputError(f"{path}: {where}[{i}]: expected [start, end]")
        out.append({"start": w[0], "end": w[1], "event_id": f"W{i + 1:02d}", "type": "nab_window"})
    return out


def _nab_entry(raw: dict[str, Any], path: Path, kpi_file: Path | None) -> tuple[str, list[Any]]:
    """The key and windows of NAB's combined_windows.json for the KPI file (``nab_key``)."""
    problem = nab_windows_problem(raw)
    if problem is not None:
        raise InputError(f"{path}: {problem}; --events takes {_NAB_WINDOWS}, ShockLab's list of "
                         "{\"start\", \"end\"} windows or a CSV with start,end columns")
    if kpi_file is None:
        raise InputError(f"{path}: a NAB label file needs the KPI file's name to pick its entry")
    key = nab_key(raw, path, kpi_file)
    wins = raw[key]
    if not isinstance(wins, list):
        raise InputError(f"{path}: [{key!r}]: expected a list of [start, end] windows")
    return key, _nab_windows(wins, path, f"[{key!r}]")


def nab_key(raw: dict[str, Any], path: Path, kpi_file: Path) -> str:
    """The key of NAB's combined_windows.json ``raw`` (read from ``path``) for the KPI file:
    its ``<category>/<file>.csv``, else the one key ending in its file name, a compression's
    suffix left out; InputError when none or several match."""
    # speed_7578.csv.gz (or .zip …; speed_7578.zip) is read as speed_7578.csv: it was "no entry
    # for 'speed_7578.csv.gz'"
    name = kpi_file.name
    if kpi_file.suffix.lower() in COMPRESSIONS:
        name = kpi_file.stem if Path(kpi_file.stem).suffix else f"{kpi_file.stem}.csv"
    rel = f"{kpi_file.parent.name}/{name}"
    hits = [k for k in raw if str(k).replace("\\", "/") == rel]
    if not hits:
        hits = [k for k in raw if str(k).replace("\\", "/").rsplit("/", 1)[-1] == name]
    if not hits:
        raise InputError(f"{path}: no entry for {name!r} (keys look like {next(iter(raw), '—')!r})")
    if len(hits) > 1:
        raise InputError(
            f"{path}: {len(hits)} entries end in {name!r} ({', '.join(sorted(hits)[:3])}); "
            f"put the KPI file in a folder named after its category"
        )
    return hits[0]


def _csv_events(path: Path) -> list[dict[str, Any]]:
    refuse_binary(path, "--events", "CSV or JSON")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, **csv_options(path))
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: events file is empty (no header)") from None
    except (pd.errors.ParserError, *UNREADABLE) as exc:   # a .csv.gz corrupt inside: zlib.error
        raise InputError(f"{path}: cannot read CSV ({type(exc).__name__}: "
                         f"{first_line(exc, 120)})") from None
    refuse_implicit_index(df, path)
    low = {c.strip().lower(): c for c in df.columns}
    if "start" not in low or "end" not in low:
        raise InputError(f"{path}: a CSV of events needs columns 'start' and 'end' (got "
                         f"{', '.join(df.columns)}){_csv_kind(low)}")
    extra = [c for k, c in low.items() if k not in LABEL_COLUMNS]
    if extra:   # notes, an annotator's name: nothing scored; a misspelt 'direction' shows here
        log.warning("%s: column(s) %s ignored (a labels CSV reads %s)", path,
                    ", ".join(map(repr, extra)), ", ".join(LABEL_COLUMNS))
        low = {k: c for k, c in low.items() if k in LABEL_COLUMNS}
    recs = []
    for row in df.to_dict("records"):
        r = {k: row[c] for k, c in low.items() if row[c] != ""}
        recs.append(r)   # "expected" is read by _flag (a value it does not know is exit 2)
    return recs


_TRUE, _FALSE = ("1", "true", "yes", "y", "1.0"), ("0", "false", "no", "n", "0.0", "")


def _flag(value: object, where: str) -> bool:
    """A label's ``expected``: a JSON boolean, or 1/0, true/false, yes/no as text (any case). The
    text "false" read as True (``bool("false")``): every label was then planned and none scored;
    a CSV's "maybe" read as False."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise InputError(f"{where}: expected true or false (1/0, yes/no), got {value!r}")


def _csv_kind(low: dict[str, str]) -> str:
    """What a CSV without start/end columns looks like, as a hint after its error line."""
    if set(PER_ROW_LABELS) & set(low):
        col = low[next(k for k in PER_ROW_LABELS if k in low)]
        return (f": per-row labels ({col!r}, NAB's results files have one) are not windows; "
                "write the labelled periods as rows of start,end")
    if "value" in low or "timestamp" in low:
        return ": a KPI series? it goes to --kpis, its labelled windows to --events"
    return ""


def _numeric_dates(raw: list[Any], path: Path, file_day_first: bool | None = None) -> list[Any]:
    """Numeric dates (``05/03/2025``) of the labels read day- or month-first for the whole file,
    as a KPI file's are (``analytics.external``), in the KPI file's order when no label date
    decides; both orders, an order other than the KPI file's, or only dates that could be either
    (and a KPI file that does not say), is an InputError. Read one by one,
    ``02/03/2025,05/03/2025`` was 3 February to 3 May (a three-month window, silently) and
    ``10/03/2025,13/03/2025`` "end before start"."""
    from analytics.transactions import dmy_order

    cells = [(i, k, ev[k]) for i, ev in enumerate(raw) if isinstance(ev, dict)
             for k in ("start", "end") if isinstance(ev.get(k), str)]
    if not cells:
        return raw
    text = pd.Series([v for _, _, v in cells], dtype="string").str.strip()
    o = dmy_order(text)
    if not o.dmy.any():
        return raw

    def cell(j: int) -> str:
        i, k, v = cells[j]
        return f"[{i}].{k} {v!r}"

    if o.conflict is not None:
        raise InputError(f"{path}: both day-first ({cell(o.conflict[0])}) and month-first "
                         f"({cell(o.conflict[1])}) dates: write ISO 8601 (YYYY-MM-DD)")
    own = True if o.day_first.any() else False if o.month_first.any() else None
    if own is not None and file_day_first is not None and own != file_day_first:
        j = int(np.flatnonzero(o.day_first if own else o.month_first)[0])
        raise InputError(f"{path}: {cell(j)} is {'day' if own else 'month'}-first, the KPI "
                         f"file's dates {'month' if own else 'day'}-first: write ISO 8601 "
                         "(YYYY-MM-DD)")
    if own is None and file_day_first is None and o.ambiguous.any():
        raise InputError(f"{path}: {cell(int(np.flatnonzero(o.ambiguous)[0]))} could be day- or "
                         "month-first and no date in the file decides: write ISO 8601 "
                         "(YYYY-MM-DD)")
    dayfirst = own if own is not None else bool(file_day_first)
    out = [dict(ev) if isinstance(ev, dict) else ev for ev in raw]
    for j in np.flatnonzero(o.dmy):
        i, k, v = cells[j]
        try:
            t = pd.to_datetime(v.strip(), dayfirst=dayfirst)   # a date stays one (end_is_day)
            out[i][k] = t.date().isoformat() if end_is_day({"end": v}) else t.isoformat()
        except (ValueError, TypeError, OverflowError):
            pass   # left as written: event_window names it
    return out


def load_events_file(path: str | Path, kpis: list[str], kpi_file: str | Path | None = None,
                     names: dict[str, str] | None = None,
                     with_offset: list[bool] | None = None,
                     day_first: bool | None = None) -> list[dict[str, Any]]:
    """Labelled windows as ShockLab truth events (formats in the module docstring);
    ``with_offset`` (a list) receives, per event, whether its start was given with a UTC
    offset; ``day_first``: the KPI file's numeric dates' order (None: not numeric), which
    numeric label dates follow when none of theirs decides."""
    path = Path(path)
    if not path.is_file():
        raise InputError(not_a_file(path, "events file"))
    nab = None
    where = ""   # a NAB entry's windows are named under its key: [<category>/<file>.csv][i]
    refuse_workbook(path, "--events", "JSON or CSV (start,end[,kpi,direction,expected])")
    if plain_suffix(path) in (".csv", ".tsv", ".txt"):   # labels.csv.gz too
        raw: Any = _csv_events(path)
    else:
        raw = read_json(path)
        if isinstance(raw, dict) and "events" in raw:
            raw = raw["events"]
        elif isinstance(raw, dict):   # NAB combined_windows.json: [] is its "no anomaly"
            key, raw = _nab_entry(raw, path, Path(kpi_file) if kpi_file else None)
            nab, where = raw, f"[{key!r}]"
        elif isinstance(raw, list) and raw and all(_is_pair(w) for w in raw):
            raw = _nab_windows(raw, path, "")   # one file's entry of combined_windows.json
        elif isinstance(raw, list) and raw and all(isinstance(w, str) for w in raw):
            raise InputError(
                f"{path}: a list of timestamps (one file's anomaly points, as in NAB's "
                f"combined_labels.json), not windows: pass {_NAB_WINDOWS}, or windows "
                "[{\"start\": …, \"end\": …}, …]")
    if not isinstance(raw, list):
        raise InputError(f"{path}: expected a list of events with start/end")
    if not raw and nab is None:   # a CSV header alone, []: no label at all, or a lost export?
        log.warning("%s: no labelled window: scored as a series without anomalies (every "
                    "incident a false alarm)", path)
    raw = _numeric_dates(raw, path, day_first)
    names = names or {}
    events = []
    first: dict[str, int] = {}
    for i, ev in enumerate(raw):
        start, end = event_window(ev, f"{path}: {where}[{i}]")
        if with_offset is not None:
            with_offset.append(pd.Timestamp(ev["start"]).tzinfo is not None)
        kpi, direction = ev.get("kpi"), ev.get("direction")
        if kpi is not None and kpi not in kpis:
            raise InputError(
                f"{path}: [{i}].kpi: {kpi!r} is not a column of the KPI file ({', '.join(kpis)})"
            )
        if direction not in (None, "up", "down"):
            raise InputError(f"{path}: [{i}].direction: must be 'up' or 'down', got {direction!r}")
        kpi = names.get(kpi, kpi) if kpi is not None else None
        effects = {kpi: 1.0 if direction == "up" else -1.0} if kpi and direction else None
        eid = str(ev.get("event_id", f"X{i + 1:02d}"))
        if eid in first:  # scoring keeps events by id: two would be counted as one
            raise InputError(
                f"{path}: [{i}].event_id: {eid!r} is already the id of [{first[eid]}] "
                "(every event needs its own)"
            )
        first[eid] = i
        events.append(
            {
                "event_id": eid,
                "type": str(ev.get("type", "labelled")),
                "expected": _flag(ev.get("expected", False), f"{path}: [{i}].expected"),
                "start": start.isoformat(),
                "end": end.isoformat(),
                "end_is_day": end_is_day(ev),
                "scope": {},
                "effects": effects,
                "primary_kpi": kpi,
            }
        )
    return events
