"""Run and experiment directories as Python objects (one reader for the dashboard and the API).

Ids are directory names under a configured root. :func:`safe_child` refuses anything that is not a
plain name (``..``, slashes, a symlink pointing outside the root), and no file of a run or
experiment is read through a symlink leading out of its root (:func:`_escapes`), so neither the API
nor the dashboard can be made to read outside ``reports/`` or ``runs/``. Parsed files are cached by
(path, mtime, size): a rerun that replaces a run directory is picked up on the next read; the cache
holds at most ``SHOCKLAB_CACHE_MB`` (default 512) of parsed values, least recently read out first.

Size (~1,000 lines, one module on purpose): ``Run``, ``Experiment`` and ``RunStore`` share the
path-safety check and the cache, so the one boundary against reading outside a root stays in one
place.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")

# relative path -> what it holds (shown when the file is missing)
RUN_FILES: dict[str, str] = {
    "run.json": "config used, data hash, versions, timings",
    "scorecard.json": "scores against the injected truth (only when the data has truth)",
    "incidents.json": "consensus incidents and each detector's own",
    "insights.json": "episodes, drivers, forecast, customers summary",
    "kpis_daily.csv": "daily KPIs overall and per slice",
    "detections.csv": "each detector's score, flag and expected value per day",
    "customers/segments.csv": "RFM segment, churn risk and CLV per customer",
    "customers/actions.csv": "recommended action per customer",
    "customers/clv.csv": "customer lifetime value",
    "customers/cohort_retention.csv": "monthly cohort retention",
    "customers/monitor_series.csv": "At-Risk / Lapsing share per day",
    "customers/alerts.jsonl": "alerts the At-Risk monitor sent",
}
EXPERIMENT_FILES: dict[str, str] = {
    "experiment.json": "the experiment's config",
    "leaderboard.csv": "settings ranked, mean and interval per metric over seeds",
    "results.parquet": "one row per (setting, seed) cell",
    "leaderboard_train.csv": "the leaderboard over the train seeds (a train/test split)",
    "summary.csv": "every metric's mean and interval over the test seeds (a train/test split)",
    "gate.json": "gate verdict (only with gate checks)",
    "detectability.csv": "recall vs shock size (detectability experiments)",
    "mde.csv": "minimum detectable effect (detectability experiments)",
}
EXPERIMENT_MARKERS = ("experiment.json", "leaderboard.csv")
EXPERIMENTS_SUBDIR = "experiments"  # run_experiment.py writes runs/experiments/<name> by default
OPTIONAL_FILES = frozenset({"customers/alerts.jsonl"})  # absent when the monitor sent no alert
KPI_KEYS = ("date", "dimension", "segment")
VALUE_TIERS = ("VIP (top 10%)", "high (75-90%)", "mid (25-75%)", "low (bottom 25%)")


class StoreError(Exception):
    """A run or experiment that does not exist, or an id that is not a plain name."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for an error message, cut at ``limit`` characters: a 100 kB id or filter
    value was echoed back whole."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def valid_id(name: str) -> bool:
    # fullmatch: ``$`` also matches before a final newline, which let "sim\n" pass as an id
    return bool(ID_RE.fullmatch(name or "")) and ".." not in name


def safe_child(root: Path, name: str) -> Path | None:
    """``root/name`` when ``name`` is a plain id whose real path stays directly inside ``root``."""
    if not valid_id(name):
        return None
    real_root = root.resolve()
    path = (real_root / name).resolve()
    return path if path.parent == real_root else None


# --- parsed-file cache ----------------------------------------------------------------------------

# Bounded by the memory the parsed values hold, not only by their number: a run's
# detections.csv and its wide series table are ~70 MB each, so 48 entries reached ~1 GB for six
# runs. SHOCKLAB_CACHE_MB (default 512) sets the budget; the newest entry stays whatever its size
# (a run larger than the budget is not re-parsed on every request).
_CACHE: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
_CACHE_LOCK = Lock()
_CACHE_MAX = 256
_CACHE_BYTES = [0]  # held by the entries now (a list: updated under the lock)


def _cache_budget() -> int:
    """The byte budget: SHOCKLAB_CACHE_MB when it is a positive number, else 512 MB."""
    try:
        mb = float(os.environ.get("SHOCKLAB_CACHE_MB", ""))
    except ValueError:
        mb = 0.0
    return int((mb if mb > 0 and np.isfinite(mb) else 512.0) * 2**20)


def _size_of(value: Any) -> int:
    """Memory a cached value holds, about: a frame's own (strings counted), bytes' length, and
    for parsed JSON or a derived mapping (a run's slices, read from its 60 MB detections.csv)
    its objects' sizes summed (iteratively: JSON may nest hundreds deep)."""
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=True, deep=True).sum())
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    total, stack = 0, [value]
    while stack:
        o = stack.pop()
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set)):
            stack.extend(o)
    return total


@dataclass(frozen=True)
class _Unreadable:
    """A file that exists but cannot be parsed (truncated by a full disk, edited, not JSON/CSV):
    cached like a value, so it is reported as unreadable, not re-parsed on every request."""

    reason: str


def _cached(path: Path, kind: str, loader, root: Path | None = None) -> Any:
    """The parsed file (None when it does not exist, an ``_Unreadable`` when it cannot be
    parsed, or when ``root`` is given and a symbolic link leads the file out of it), cached by
    (path, kind, mtime, size)."""
    if root is not None and (why := _escapes(path, root)):
        return _Unreadable(why)
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), kind, st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key][0]
    try:
        value = loader(path)
    # JSONDecodeError, UnicodeDecodeError, ParserError …; RecursionError: JSON nested thousands
    # deep (a 500 on GET /runs for every run, not this one file named)
    except (ValueError, OSError, RecursionError) as exc:
        # the caller names the file: no server path in a reason the API sends (pyarrow's has it)
        first = (str(exc).replace(str(path), path.name).splitlines() or [""])[0][:160]
        value = _Unreadable(f"{type(exc).__name__}: {first}")
    size = _size_of(value)
    budget = _cache_budget()
    with _CACHE_LOCK:
        if key in _CACHE:  # another thread parsed it meanwhile
            _CACHE_BYTES[0] -= _CACHE.pop(key)[1]
        _CACHE[key] = (value, size)
        _CACHE_BYTES[0] += size
        while len(_CACHE) > 1 and (len(_CACHE) > _CACHE_MAX or _CACHE_BYTES[0] > budget):
            _CACHE_BYTES[0] -= _CACHE.popitem(last=False)[1][1]
    return value


def _escapes(path: Path, root: Path) -> str | None:
    """Why ``path`` is not read when a symbolic link takes it out of ``root`` (a run file
    linked to a file elsewhere on the server was served), else None."""
    try:
        path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return "not read: a symbolic link that cannot be resolved"
    if _inside(path, (root,)) is not None:
        return None
    return f"not read: a symbolic link to a file outside the {root.resolve().name}/ root"


def _each(prefix: str, **kinds: str) -> dict[str, str]:
    """``{prefix.key: kind}`` for each key (``object=""``: ``prefix`` itself is an object)."""
    return {f"{prefix}.{k}" if v else prefix: v or k for k, v in kinds.items()}


# what the readers rely on in each JSON file (dotted key -> type; ``*``: each value of an object
# or item of an array; null always passes): a file that parses but breaks it (hand-edited,
# another program's file) is unreadable, named with the key, not an AttributeError on every page
# and route that reads it
JSON_SHAPES: dict[str, dict[str, str]] = {
    "run.json": {"config": "object", "data": "object", "data_hash": "string",
                 "versions": "object", "versions.*": "string", "timings_seconds": "object",
                 "timings_seconds.*": "number", "detector_status": "object",
                 # the action and segment names a customer filter is checked against
                 "config.customers": "object", "config.customers.actions": "object",
                 "config.customers.actions.rules": "array",
                 "config.customers.actions.rules.*": "object",
                 "config.customers.actions.rules.*.action": "string",
                 "config.customers.actions.default_action": "string",
                 "config.customers.rfm": "object", "config.customers.rfm.segments": "array",
                 "config.customers.rfm.segments.*": "object",
                 "config.customers.rfm.segments.*.name": "string",
                 "config.customers.rfm.default_segment": "string",
                 # the Overview's detector table, the planned calendar's data directory
                 "detector_status.*": "object", "data.path": "string",
                 "data.has_truth": "boolean", "data.source": "string"},
    "insights.json": {"run": "object", "run.scenario": "string", "run.source": "string",
                      "run.period_start": "date", "run.period_end": "date",
                      "incidents_total": "integer", "episodes": "array", "incidents": "array",
                      "customers": "object", "forecast": "object", "summary": "object",
                      # customer counts the segments route adds up
                      "customers.customers": "integer", "customers.segments": "object",
                      "customers.segments.*": "integer", "customers.actions": "object",
                      "customers.actions.*": "integer", "customers.clusters": "object",
                      "customers.clusters.sizes": "object",
                      "customers.clusters.sizes.*": "integer", "customers.clv": "object",
                      # what an Episodes card reads of each episode
                      **_each("episodes.*", object="", signature="object", drivers="object",
                              kpi_changes="object", kpis="array", slices="array",
                              matched_event_ids="array", incident_ids="array",
                              episode_id="string", title="string", severity="string"),
                      "episodes.*.kpi_changes.*": "number", "episodes.*.drivers.drivers": "array",
                      **_each("episodes.*.drivers.drivers.*", object="", change="number",
                              actual="number", expected="number", share_of_change="number")},
    "scorecard.json": {"headline": "object", "headline.recall": "number",
                       "headline.precision": "number", "headline.f1": "number",
                       "headline.mode": "string", "strict": "object", "lenient": "object",
                       "events": "object", "event_detail": "array", "insights": "object",
                       # the scoreboard's rows, and the true events (the planned days of a run
                       # whose data calendar is not read come from the expected ones)
                       **{f"{m}.{k}": "object" for m in ("strict", "lenient")
                          for k in ("consensus", "detectors", "detectors.*", "consensus_levels",
                                    "consensus_levels.*", "oracle_equal_fp")},
                       **{f"{m}.{b}.{k}": "number" for m in ("strict", "lenient")
                          for b in ("consensus", "detectors.*", "consensus_levels.*")
                          for k in ("recall", "precision", "f1", "median_delay_days")},
                       **_each("event_detail.*", object="", start="day", end="day",
                               detected_by="object", expected="boolean")},
    "incidents.json": {"incidents": "array", "by_detector": "object", "by_detector.*": "array",
                       "detector_status": "object", "rule": "object", "rule.voters": "array",
                       # each incident a record (its fields: the API's Incident model)
                       "incidents.*": "object", "by_detector.*.*": "object"},
    "experiment.json": {"config": "object", "name": "string", "kind": "string"},
    "gate.json": {"passed": "boolean", "checks": "array", "checks.*": "object"},
}


# the columns the readers select in each CSV file (by file name)
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "kpis_daily.csv": KPI_KEYS,
    "detections.csv": (*KPI_KEYS, "kpi", "detector", "score", "flag", "expected", "actual"),
    "segments.csv": ("customer_id", "segment"),
    "actions.csv": ("customer_id", "action", "reason"),
    "monitor_series.csv": ("date", "segment", "customers", "share", "growth", "normal_growth",
                           "severity"),
    "cohort_retention.csv": ("cohort", "cohort_customers"),
    "leaderboard.csv": ("rank", "setting_id", "n_seeds", "n_failed"),
    "detectability.csv": ("event_type", "entity", "magnitude", "recall"),
    "mde.csv": ("event_type", "entity", "mde"),
}


def _is_day(v: Any) -> bool:
    try:
        return isinstance(v, str) and bool(datetime.fromisoformat(v[:10]))
    except ValueError:
        return False


def _is_date(v: Any) -> bool:
    """A plain day, nothing after it: the run summary's period is a date (a '…T05:00:00' passed
    the day check and failed the API's response model: GET /runs was a 500 for every run)."""
    return isinstance(v, str) and len(v) == 10 and _is_day(v)


def _jtype(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(v), "a number")


_IS = {"object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
       "string": lambda v: isinstance(v, str), "day": _is_day, "date": _is_date,
       "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
       "boolean": lambda v: isinstance(v, bool),
       "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}


def _reach(node: Any, parts: list[str], where: str):
    """(dotted place, value) of each value a dotted key reaches; ``*`` is every value of an
    object or every item of an array; a place whose parent is not an object is not reached."""
    if not parts:
        yield where, node
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
    else:
        items = [(head, node.get(head))] if isinstance(node, dict) else ()
    for k, v in items:
        yield from _reach(v, rest, f"{where}.{k}" if where else str(k))


def _check_shape(doc: Any, shape: dict[str, str]) -> None:
    """ValueError naming the first key of ``doc`` that is not of its ``shape`` type."""
    if not isinstance(doc, dict):
        raise ValueError(f"not a JSON object ({_jtype(doc)})")
    for key, kind in shape.items():
        for where, v in _reach(doc, key.split("."), ""):
            if v is not None and not _IS[kind](v):
                raise ValueError(f"{where!r} is {_jtype(v)} ({str(v)[:40]!r}), not {kind}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (ShockLab writes null)")


def _read_json(path: Path) -> Any:
    # NaN / Infinity: Python reads them, but the raw bytes served would be no JSON to a client
    doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    if path.name in JSON_SHAPES:
        _check_shape(doc, JSON_SHAPES[path.name])
    return doc


def _read_bytes(path: Path) -> bytes:
    return path.read_bytes()


# columns of names the analysis writes (a slice, KPI, detector) and customer ids: read as text,
# empty alone missing (a transactions file's id 000001 was read back as the number 1)
NAME_COLUMNS = frozenset({"dimension", "segment", "kpi", "detector", "channel", "country",
                          "category", "customer_id"})


def _read_csv(path: Path) -> pd.DataFrame:
    # every CSV ShockLab writes ends with a newline; pandas reads a file cut short mid-row (a full
    # disk, a copy in progress) without complaint, half a row or half a header included
    with path.open("rb") as f:
        if f.seek(0, 2) > 0:  # an empty file is pandas' EmptyDataError
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                raise ValueError("cut short: the last line has no newline")
    cols = pd.read_csv(path, nrows=0).columns
    names = [c for c in cols if c in NAME_COLUMNS]
    if names:   # a slice named NA (Namibia) is a name, not pandas' missing value
        from pandas._libs.parsers import STR_NA_VALUES

        na = {c: [""] if c in names else list(STR_NA_VALUES) for c in cols}
        df = pd.read_csv(path, low_memory=False, keep_default_na=False, na_values=na,
                         dtype=dict.fromkeys(names, str))
    else:
        df = pd.read_csv(path, low_memory=False)
    lacking = [c for c in CSV_COLUMNS.get(path.name, ()) if c not in df.columns]
    if lacking:  # an edited or foreign file: named, not a KeyError on the page or route reading it
        raise ValueError(f"no column {', '.join(map(repr, lacking))}")
    _check_values(df, path.name)
    return df


# columns the readers compute with (by file name; "*": every column but the keys): text in one
# of them (an edited file) is named, not a TypeError on the route that compares or converts it
CSV_NUMBERS: dict[str, tuple[str, ...]] = {
    "kpis_daily.csv": ("*",),
    "detections.csv": ("score", "expected", "actual"),
    "segments.csv": ("churn_risk", "value_pct", "clv", "recency_days", "frequency", "monetary"),
    # the dashboard's charts and tables compute with these (a heatmap, percent, error bars)
    "cohort_retention.csv": ("*",),
    "monitor_series.csv": ("customers", "share", "growth", "normal_growth", "z"),
    "leaderboard.csv": ("*.mean", "*.std", "*.ci_low", "*.ci_high"),
    "detectability.csv": ("magnitude", "recall", "recall_ci_low", "recall_ci_high"),
    "mde.csv": ("mde",),
}
CSV_DATES = {"kpis_daily.csv": "date", "detections.csv": "date"}
# columns that hold text in a file whose other columns are all numbers ("*")
CSV_TEXT = {"kpis_daily.csv": KPI_KEYS, "cohort_retention.csv": ("cohort",)}
# columns every row must fill: a row without its slice was a TypeError sorting the segments
CSV_FILLED = {"kpis_daily.csv": KPI_KEYS, "detections.csv": (*KPI_KEYS, "kpi", "detector")}


def _number_columns(df: pd.DataFrame, name: str) -> list[str]:
    out = []
    for spec in CSV_NUMBERS.get(name, ()):
        if spec == "*":
            out += [c for c in df.columns if c not in CSV_TEXT.get(name, ())]
        elif spec.startswith("*"):
            out += [c for c in df.columns if str(c).endswith(spec[1:])]
        else:
            out.append(spec)
    return out


def _check_values(df: pd.DataFrame, name: str) -> None:
    for c in CSV_FILLED.get(name, ()):
        empty = df[c].isna().to_numpy() if c in df.columns else ()
        if len(empty) and empty.any():
            raise ValueError(f"column {c!r} is empty on line {int(empty.argmax()) + 2}")
    for c in _number_columns(df, name):
        if c in df.columns and not pd.api.types.is_numeric_dtype(df[c]):
            bad = (pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()).to_numpy()
            if not bad.any():  # no value at all (a header-only file reads as text)
                continue
            row = int(bad.argmax())
            raise ValueError(f"column {c!r} holds text ({str(df[c].iloc[row])[:40]!r}, "
                             f"line {row + 2}), not a number")
    col = CSV_DATES.get(name)
    if col in df.columns and len(df):
        days = pd.Series(df[col].unique()).astype(str)
        bad = pd.to_datetime(days, errors="coerce", format="ISO8601").isna()
        if bad.any():
            raise ValueError(f"column {col!r} holds {days[bad].iloc[0][:40]!r}, not a date")


CALENDAR = "marketing_calendar.csv"


def _read_calendar(path: Path) -> pd.DataFrame:
    """A marketing calendar's planned days (date, name, kind as text; dates YYYY-MM-DD)."""
    cal = _read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    lacking = [c for c in ("date", "name", "kind") if c not in cal.columns]
    if lacking:
        raise ValueError(f"no column {', '.join(map(repr, lacking))}")
    days = pd.to_datetime(cal["date"].astype(str), errors="coerce", format="ISO8601")
    if days.isna().any():
        raise ValueError(f"column 'date' holds {str(cal['date'][days.isna()].iloc[0])[:40]!r}, "
                         "not a date")
    return cal[["name", "kind"]].astype(str).assign(date=days.dt.strftime("%Y-%m-%d"))[
        ["date", "name", "kind"]]


def _inside(path: Path, roots: tuple[Path, ...] | list[Path]) -> Path | None:
    """The root of ``roots`` whose real path holds ``path``'s, else None."""
    try:
        real = path.resolve()
        for r in roots:
            top = Path(r).resolve()
            if real == top or top in real.parents:
                return top
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None
    return None


def _read_cells(path: Path) -> pd.DataFrame:
    """results.parquet's cell status columns (cell_id, setting_id, seed, status, error)."""
    cols = ["cell_id", "setting_id", "seed", "status", "error"]
    df = pd.read_parquet(path)
    if "status" not in df.columns:  # another program's file: named, not a KeyError per reader
        raise ValueError("no column 'status'")
    return df[[c for c in cols if c in df.columns]]


def _segment_order(seg: str) -> tuple:
    """Product ids in numeric order (2 before 10), names alphabetically."""
    return (0, int(seg), "") if seg.isdigit() else (1, 0, seg)


def _widen(kpis: pd.DataFrame, det: pd.DataFrame) -> pd.DataFrame:
    """``kpis`` plus every (dimension, kpi) of ``det`` that ``kpis`` does not hold — new rows for
    a dimension it lacks, a new column for a KPI it lacks — from ``actual`` (the same on every
    detector's row of a point)."""
    need = ["date", "kpi", "dimension", "segment", "actual"]
    if not set(need) <= set(det.columns) or det.empty:
        return kpis
    dims = set(kpis["dimension"].astype(str))
    have = set(kpis.columns) - set(KPI_KEYS)
    extra = det[~det["dimension"].astype(str).isin(dims) | ~det["kpi"].astype(str).isin(have)]
    if extra.empty:
        return kpis
    extra = extra[need].astype({"segment": str, "date": str})  # before dedup: 1 and "1" agree
    extra = extra.drop_duplicates(need[:4])
    wide = extra.pivot(index=list(KPI_KEYS), columns="kpi", values="actual")
    base = kpis.assign(segment=kpis["segment"].astype(str), date=kpis["date"].astype(str))
    base = base.set_index(list(KPI_KEYS))
    # new rows (a dimension kpis lacks) and new columns (a KPI it lacks): no cell is in both
    out = base.combine_first(wide)
    cols = [*base.columns, *(c for c in wide.columns if c not in base.columns)]
    return out[cols].reset_index()


def _read_jsonl(path: Path) -> list[dict]:
    rows = [
        json.loads(line, parse_constant=_no_constant)
        for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"record {i} is not a JSON object ({_jtype(row)})")
    return rows


def _slices(df: pd.DataFrame) -> dict[str, list[str]]:
    """dimension -> its segments (as text, in ``_segment_order``), 'overall' first."""
    pairs = df[["dimension", "segment"]].drop_duplicates()
    out = {
        d: sorted(g["segment"].astype(str).tolist(), key=_segment_order)
        for d, g in pairs.groupby("dimension", sort=True)
    }
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "overall", kv[0])))


def _usable(value: Any) -> Any:
    """A reader's answer: None for a missing or unreadable file (``Run.problem`` says why)."""
    return None if isinstance(value, _Unreadable) else value


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed since listed: sorts last
        return 0.0


def _mtime_iso(path: Path) -> str | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    except OSError:
        return None


def value_tier(value_pct: pd.Series) -> pd.Series:
    """CLV percentile (0..1, 1 = most valuable) -> a named tier."""
    v = pd.to_numeric(value_pct, errors="coerce").to_numpy(dtype=float)
    tier = np.select([v >= 0.9, v >= 0.75, v >= 0.25, v >= 0], VALUE_TIERS, default="unknown")
    return pd.Series(tier, index=value_pct.index, dtype=object)


# --- runs -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One run directory. Every reader returns ``None`` when its file is missing or unreadable.

    Returned DataFrames and dicts are shared through the cache: copy before mutating.
    """

    id: str
    path: Path

    @property
    def root(self) -> Path:
        """The store root holding this run: no file is read through a link leading out of it."""
        return self.path.parent

    # raw files
    def file(self, rel: str) -> Path:
        return self.path / rel

    def has(self, rel: str) -> bool:
        return self.file(rel).is_file()

    def missing(self, rels: tuple[str, ...] | list[str] | None = None) -> list[str]:
        """Expected files (``rels``, else every non-optional one) that are absent; a file that
        is present but cannot be parsed is in ``unreadable`` instead."""
        wanted = rels or [r for r in RUN_FILES if r not in OPTIONAL_FILES]
        return [r for r in wanted if not self.has(r)]

    def unreadable(self, rels: tuple[str, ...] | list[str] | None = None) -> dict[str, str]:
        """Present files that cannot be parsed -> why ('JSONDecodeError: …'). Files named in
        ``rels`` are parsed to know; without ``rels`` only parses already tried count (the run
        list must not parse every run's detections.csv)."""
        out = {}
        for r in rels or RUN_FILES:
            why = self.problem(r, load=rels is not None) if self.has(r) else None
            if why is not None:
                out[r] = why
        return out

    def problem(self, rel: str, load: bool = True) -> str | None:
        """Why an existing file cannot be read ('JSONDecodeError: …'), else None. ``load``
        False: only a parse already tried (and cached) counts."""
        path = self.file(rel)
        kind = {".json": "json", ".csv": "csv", ".jsonl": "jsonl"}.get(path.suffix)
        if kind is None:
            return None
        if why := _escapes(path, self.root):
            return why
        if load:
            {"json": self.json, "csv": self.csv}.get(kind, lambda _: self.alerts())(rel)
        try:
            st = path.stat()
        except OSError:
            return None
        with _CACHE_LOCK:
            v = _CACHE.get((str(path), kind, st.st_mtime_ns, st.st_size), (None, 0))[0]
        return v.reason if isinstance(v, _Unreadable) else None

    def json(self, rel: str) -> Any:
        return _usable(_cached(self.file(rel), "json", _read_json, self.root))

    def raw(self, rel: str) -> bytes | None:
        return _usable(_cached(self.file(rel), "bytes", _read_bytes, self.root))

    def csv(self, rel: str) -> pd.DataFrame | None:
        return _usable(_cached(self.file(rel), "csv", _read_csv, self.root))

    # named files
    def info(self) -> dict:
        return self.json("run.json") or {}

    def scorecard(self) -> dict | None:
        return self.json("scorecard.json")

    def insights(self) -> dict | None:
        return self.json("insights.json")

    def incidents_doc(self) -> dict | None:
        return self.json("incidents.json")

    def kpis(self) -> pd.DataFrame | None:
        return self.csv("kpis_daily.csv")

    def detections(self) -> pd.DataFrame | None:
        return self.csv("detections.csv")

    def alerts(self) -> list[dict] | None:
        """This run's alerts as its JSONL sink recorded them (every issued alert, each with
        ``undelivered_to``: the sinks it still waits for, from insights.json — a failed Slack
        send reaches the JSONL record all the same)."""
        rows = _usable(_cached(self.file("customers/alerts.jsonl"), "jsonl", _read_jsonl,
                               self.root))
        if not rows:
            return rows
        mon = ((self.insights() or {}).get("customers") or {}).get("monitor") or {}
        listed = mon.get("alerts") if isinstance(mon, dict) else None
        waiting = {str(a.get("alert_id")): [str(s) for s in a.get("undelivered_to") or []]
                   for a in listed or [] if isinstance(a, dict)}
        return [{**a, "undelivered_to": waiting.get(str(a.get("alert_id")), [])} for a in rows]

    # derived views
    @property
    def source(self) -> str:
        data = self.info().get("data") or {}
        if data.get("source"):
            return str(data["source"])
        ins = self.insights() or {}
        return str((ins.get("run") or {}).get("source") or "unknown")

    def summary(self) -> dict:
        info, ins = self.info(), self.insights() or {}
        run = ins.get("run") or {}
        sc = self.scorecard()
        head = (sc or {}).get("headline") or {}
        return {
            "id": self.id, "source": self.source, "scenario": run.get("scenario"),
            "period_start": run.get("period_start"), "period_end": run.get("period_end"),
            "data_hash": info.get("data_hash"), "has_scorecard": sc is not None,
            "recall": head.get("recall"), "precision": head.get("precision"), "f1": head.get("f1"),
            "incidents": ins.get("incidents_total"), "modified": _mtime_iso(self.path),
            "missing": self.missing(), "unreadable": self.unreadable(),
        }

    def series_table(self) -> pd.DataFrame | None:
        """kpis_daily.csv widened by the watched series it does not hold — product series and the
        list-price indexes (KPI ``price``) — from detections.csv's ``actual``; None without
        kpis_daily.csv."""
        kpis, det = self.kpis(), self.detections()
        if kpis is None or det is None:
            return kpis
        # cached by detections.csv's (path, mtime, size); kpis_daily.csv is written in the same run
        return _usable(_cached(self.file("detections.csv"), "series", lambda _p: _widen(kpis, det)))

    def kpi_names(self) -> list[str]:
        df = self.series_table()
        return [] if df is None else [c for c in df.columns if c not in KPI_KEYS]

    def slices(self) -> dict[str, list[str]]:
        """dimension -> its segments, from kpis_daily.csv and the watched series it lacks
        (``series_table``; 'overall' first). Cached like the table it comes from: with products
        watched the table holds ~10x kpis_daily's rows, and GET /incidents and /kpis read the
        slices on every request (~20 ms each on the default run when it was recomputed)."""
        df = self.series_table()
        if df is None:
            return {}
        src = self.file("detections.csv" if self.detections() is not None else "kpis_daily.csv")
        out = _usable(_cached(src, "slices", lambda _p: _slices(df)))
        return {d: list(v) for d, v in (out if out is not None else _slices(df)).items()}

    def kpi_dimensions(self, kpi: str) -> list[str]:
        """The dimensions on which ``kpi`` has any value ('overall' first)."""
        df = self.series_table()
        if df is None or kpi not in df.columns:
            return []
        have = set(df.loc[df[kpi].notna(), "dimension"].astype(str))
        return [d for d in self.slices() if d in have]

    def kpi_series(self, kpi: str, dimension: str = "overall", segment: str = "all",
                   start: str | None = None, end: str | None = None) -> pd.DataFrame:
        """Columns date, value for one KPI in one slice (empty when the slice has no rows).
        ``start`` / ``end`` are inclusive; a day (``YYYY-MM-DD``) as ``end`` keeps every period
        of that day on sub-daily data (``2025-03-01 23:00:00`` sorts after ``2025-03-01``)."""
        df = self.series_table()
        if df is None or kpi not in df.columns:
            return pd.DataFrame({"date": [], "value": []})
        m = (df["dimension"] == dimension) & (df["segment"].astype(str) == str(segment))
        dates = df["date"].astype(str)
        if start:
            m &= dates >= start
        if end:
            m &= (dates.str[: len(end)] if len(end) == 10 else dates) <= end
        out = df.loc[m, ["date", kpi]].rename(columns={kpi: "value"})
        return out.sort_values("date").reset_index(drop=True)

    def detections_for(
        self, kpi: str, dimension: str = "overall", segment: str = "all"
    ) -> pd.DataFrame | None:
        det = self.detections()
        if det is None:
            return None
        m = (
            (det["kpi"] == kpi)
            & (det["dimension"] == dimension)
            & (det["segment"].astype(str) == str(segment))
        )
        return det.loc[m].reset_index(drop=True)

    def scoreboard(self, mode: str = "strict") -> pd.DataFrame | None:
        """One row per detector, consensus level and the configured consensus."""
        sc = self.scorecard()
        if not sc or mode not in sc:
            return None
        block = sc[mode]
        rows = []
        for name, m in sorted((block.get("detectors") or {}).items()):
            rows.append(
                {
                    "entity": name,
                    "kind": "oracle" if name == "oracle" else "detector",
                    **_metrics(m),
                }
            )
        for name, m in sorted((block.get("consensus_levels") or {}).items()):
            rows.append({"entity": f"consensus {name}", "kind": "consensus level", **_metrics(m)})
        if block.get("consensus"):
            rows.append(
                {
                    "entity": "CONSENSUS (configured)",
                    "kind": "consensus",
                    **_metrics(block["consensus"]),
                }
            )
        return pd.DataFrame(rows)

    def by_type(self, mode: str = "strict") -> pd.DataFrame | None:
        """Recall per event type (rows) and entity (columns)."""
        sc = self.scorecard()
        if not sc or mode not in sc:
            return None
        block, cols = sc[mode], {}
        for name, m in (block.get("detectors") or {}).items():
            cols[name] = {t: v.get("recall") for t, v in (m.get("by_type") or {}).items()}
        for name, m in (block.get("consensus_levels") or {}).items():
            cols[f"consensus {name}"] = {
                t: v.get("recall") for t, v in (m.get("by_type") or {}).items()
            }
        if block.get("consensus"):
            cols["CONSENSUS"] = {
                t: v.get("recall") for t, v in (block["consensus"].get("by_type") or {}).items()
            }
        if not cols:
            return None
        out = pd.DataFrame(cols)
        out.index.name = "event_type"
        return out.sort_index().reset_index()

    def events(self) -> pd.DataFrame | None:
        """True events from the scorecard (``event_detail``): the only place the run keeps them."""
        sc = self.scorecard()
        if not sc or not sc.get("event_detail"):
            return None
        rows = []
        for e in sc["event_detail"]:
            det = e.get("detected_by") or {}
            rows.append(
                {
                    "event_id": e.get("event_id"),
                    "type": e.get("type"),
                    "start": e.get("start"),
                    "end": e.get("end"),
                    "expected": bool(e.get("expected")),
                    "primary_kpi": e.get("primary_kpi"),
                    "consensus_delay": det.get("consensus"),
                    "detected": "consensus" in det,
                    "detected_by": ", ".join(sorted(k for k in det if k != "consensus")),
                }
            )
        return pd.DataFrame(rows)

    def calendar(self, data_roots: tuple[Path, ...] | list[Path] = ()) -> pd.DataFrame:
        """Planned calendar days (columns date, name, kind): see :meth:`planned_days`."""
        return self.planned_days(data_roots)[0]

    def planned_days(self, data_roots: tuple[Path, ...] | list[Path] = ()
                     ) -> tuple[pd.DataFrame, str | None]:
        """Planned calendar days (columns date, name, kind) and, when a calendar was not read,
        why. From the run directory's ``marketing_calendar.csv`` (a ``--kpis --calendar`` run's
        copy, read like any run file), else the ``marketing_calendar`` of the data directory
        run.json names — only when it lies inside one of ``data_roots``: run.json can name any
        directory on the machine, and no reader of this store opens a file outside the roots it
        was given — else the scorecard's expected events."""
        own = _cached(self.file(CALENDAR), "calendar", _read_calendar, self.root)
        if isinstance(own, pd.DataFrame):
            return own, None
        note = None if own is None else f"`{CALENDAR}` cannot be read ({own.reason})"
        data = self.info().get("data") or {}
        # a data directory (generate_data.py's layout) holds one; a --transactions file does not
        path = data.get("path") if data.get("source") in (None, "simulated") else None
        if path and note is None:
            root = _inside(Path(path), data_roots)
            if root is None:
                note = (f"the data directory `{str(path)[:120].replace('`', '')}` is outside "
                        "the data roots "
                        f"({', '.join(f'`{r}`' for r in data_roots) or 'none'}): its "
                        "marketing calendar is not read")
            for f in (Path(path) / CALENDAR, Path(path) / "marketing_calendar.parquet"):
                cal = _cached(f, "calendar", _read_calendar, root) if root else None
                if isinstance(cal, pd.DataFrame):
                    return cal, None
                if isinstance(cal, _Unreadable):
                    note = f"the data directory's `{f.name}` cannot be read ({cal.reason})"
                    break
        ev = self.events()
        if ev is None or not ev["expected"].any():
            return pd.DataFrame({"date": [], "name": [], "kind": []}), note
        exp = ev[ev["expected"]]
        days = [(d.strftime("%Y-%m-%d"), r.event_id, r.type) for r in exp.itertuples()
                for d in pd.date_range(r.start, r.end)]
        return pd.DataFrame(days, columns=["date", "name", "kind"]), note

    def incidents(self, source: str = "consensus") -> list[dict] | None:
        """Consensus incidents (``source='consensus'``) or one detector's own incidents."""
        doc = self.incidents_doc()
        if doc is None:
            return None
        if source == "consensus":
            return list(doc.get("incidents") or [])
        return list((doc.get("by_detector") or {}).get(source) or [])

    def detector_names(self) -> list[str]:
        doc = self.incidents_doc() or {}
        names = set(doc.get("by_detector") or {}) | set(doc.get("detector_status") or {})
        return sorted(names)

    def levels(self) -> list[str]:
        """The consensus level names this run's voters can produce (single, pairwise, …)."""
        voters = ((self.incidents_doc() or {}).get("rule") or {}).get("voters") or []
        n = len(voters)
        return [{1: "single", 2: "pairwise", 3: "triple"}.get(k, f"{k}_of_{n}")
                for k in range(1, n + 1)]

    def customer_names(self) -> dict[str, list[str]]:
        """The action and segment names the run's config defines (run.json), in config order:
        a filter naming one that no customer has is an empty page, not an unknown name."""
        cust = (self.info().get("config") or {}).get("customers") or {}
        acts, rfm = cust.get("actions") or {}, cust.get("rfm") or {}
        actions = [r.get("action") for r in acts.get("rules") or []] + [acts.get("default_action")]
        segments = [s.get("name") for s in rfm.get("segments") or []] + [
            rfm.get("default_segment")]
        return {"actions": [a for a in actions if a], "segments": [s for s in segments if s]}

    def customer_table(self) -> pd.DataFrame | None:
        """segments.csv joined with actions.csv, plus a value tier from the CLV percentile."""
        seg = self.csv("customers/segments.csv")
        if seg is None:
            return None
        act = self.csv("customers/actions.csv")
        out = seg
        if act is not None:
            out = seg.merge(act[["customer_id", "action", "reason"]], on="customer_id", how="left")
        out = out.copy()
        out["value_tier"] = value_tier(out["value_pct"]) if "value_pct" in out else "unknown"
        return out


def _metrics(m: dict) -> dict:
    keys = (
        "recall",
        "precision",
        "f1",
        "median_delay_days",
        "incidents",
        "fp",
        "fp_expected",
        "detected",
        "events",
    )
    return {k: m.get(k) for k in keys}


def compare_events(a: Run, b: Run) -> pd.DataFrame | None:
    """Unexpected events of two runs side by side: which one the consensus found, which it
    missed. An event in one run's truth only (the runs analysed different data) is not one the
    other missed: ``in_a`` / ``in_b`` say which runs hold it, its verdict is "A's data only" or
    "B's data only"."""
    key = ["event_id", "type", "start", "end"]
    ea, eb = (_events_or_none(r, [*key, "expected", "detected", "consensus_delay"])
              for r in (a, b))
    if ea is None or eb is None:
        return None
    ea, eb = ea[~ea["expected"]], eb[~eb["expected"]]
    m = ea[key + ["detected", "consensus_delay"]].assign(in_a=True).merge(
        eb[key + ["detected", "consensus_delay"]].assign(in_b=True), on=key, how="outer",
        suffixes=("_a", "_b"))
    in_a = m["in_a"].astype("boolean").fillna(False).astype(bool)
    in_b = m["in_b"].astype("boolean").fillna(False).astype(bool)
    da = m["detected_a"].astype("boolean").fillna(False).astype(bool)
    db = m["detected_b"].astype("boolean").fillna(False).astype(bool)
    m["detected_a"], m["detected_b"], m["in_a"], m["in_b"] = da, db, in_a, in_b
    m["verdict"] = np.select(
        [~in_b, ~in_a, da & db, da & ~db, ~da & db],
        ["A's data only", "B's data only", "both", "only A", "only B"], default="neither")
    return m.sort_values(["start", "event_id"]).reset_index(drop=True)


def _events_or_none(run: Run, cols: list[str]) -> pd.DataFrame | None:
    """The run's true events; an empty table for a scorecard without any (a world with no
    shock), None without a scorecard."""
    ev = run.events()
    if ev is None and run.scorecard() is not None:
        return pd.DataFrame({c: pd.Series(dtype=bool if c == "expected" else object)
                             for c in cols})
    return ev


# --- experiments ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    id: str
    path: Path

    def has(self, rel: str) -> bool:
        return (self.path / rel).is_file()

    def expected(self) -> list[str]:
        """The files this experiment writes, as its experiment.json says (run_experiment.py's
        ``written``): config, results and leaderboard always; of a train/test split the train
        leaderboard (train seeds run) and summary.csv (test seeds run); gate.json with gate
        checks; the detectability tables of that kind. (A gate from ``--baseline`` alone is in
        no config: its gate.json is not expected.)"""
        cfg = self.config()
        split = cfg.get("split") if isinstance(cfg.get("split"), dict) else None
        run = split.get("run", "both") if split else None
        gate = cfg.get("gate") if isinstance(cfg.get("gate"), dict) else {}
        written = {"leaderboard_train.csv": split is not None and run != "test",
                   "summary.csv": split is not None and run != "train",
                   "gate.json": bool(gate.get("checks")),
                   "detectability.csv": self.kind == "detectability",
                   "mde.csv": self.kind == "detectability"}
        return [r for r in EXPERIMENT_FILES if written.get(r, True)]

    def missing(self) -> list[str]:
        """Expected files (``expected``) that are absent: a rerun killed while it rewrote its
        tables lacks all of them (only leaderboard.csv was named); one present but unparseable
        is in ``unreadable``."""
        return [r for r in self.expected() if not self.has(r)]

    def _parsed(self, rel: str) -> Any:
        """The file parsed (cached): None when absent, an ``_Unreadable`` when it cannot be."""
        path = self.path / rel
        if rel == "results.parquet":
            return _cached(path, "cells", _read_cells, self.path.parent)
        return _cached(path, "json", _read_json, self.path.parent) if path.suffix == ".json" \
            else _cached(path, "csv", _read_csv, self.path.parent)

    def unreadable(self) -> dict[str, str]:
        """Present files that cannot be parsed -> why ('JSONDecodeError: …'); every file is
        parsed to know (an experiment's files are small)."""
        return {r: v.reason for r in EXPERIMENT_FILES
                if isinstance(v := self._parsed(r), _Unreadable)}

    def config(self) -> dict:
        doc = _usable(self._parsed("experiment.json")) or {}
        return doc.get("config") or doc

    def seeds(self) -> list | None:
        """The seeds the experiment ran (experiment.json's resolved list; its config may hold
        ``{count, start}`` or a train/test ``split`` instead)."""
        doc = _usable(self._parsed("experiment.json")) or {}
        seeds = doc.get("seeds")
        return seeds if isinstance(seeds, list) else None

    @property
    def kind(self) -> str:
        return str(self.config().get("kind") or "sweep")

    def csv(self, rel: str) -> pd.DataFrame | None:
        return _usable(self._parsed(rel))

    def leaderboard(self) -> pd.DataFrame | None:
        return self.csv("leaderboard.csv")

    def detectability(self) -> pd.DataFrame | None:
        return self.csv("detectability.csv")

    def mde(self) -> pd.DataFrame | None:
        return self.csv("mde.csv")

    def gate(self) -> dict | None:
        """The gate verdict; None without gate checks or when gate.json cannot be read
        (``unreadable`` tells the two apart)."""
        return _usable(self._parsed("gate.json"))

    def cells(self) -> pd.DataFrame | None:
        """Cell status (cell_id, setting_id, seed, status, error) from results.parquet."""
        return _usable(self._parsed("results.parquet"))

    def metrics(self) -> list[str]:
        return [str(m) for m in self.config().get("metrics") or []]

    def summary(self) -> dict:
        cells = self.cells()
        gate = self.gate()
        return {"id": self.id, "kind": self.kind, "name": self.config().get("name"),
                "cells": None if cells is None else len(cells),
                "failed": None if cells is None else int((cells["status"] != "ok").sum()),
                "gate_passed": None if gate is None else bool(gate.get("passed")),
                "modified": _mtime_iso(self.path), "missing": self.missing(),
                "unreadable": self.unreadable()}


# --- the store ------------------------------------------------------------------------------------

RUN_MARKERS = ("run.json", "insights.json", "kpis_daily.csv")  # any one makes a directory a run

class RunStore:
    """Run directories under ``reports`` and experiment directories under ``runs``."""

    def __init__(self, reports: str | Path = "reports", runs: str | Path = "runs"):
        self.reports = Path(reports)
        self.runs = Path(runs)

    @staticmethod
    def _children(root: Path, marker_files: tuple[str, ...]) -> list[Path]:
        if not root.is_dir():
            return []
        out = []
        for p in root.iterdir():
            # atomic writers use hidden ".<name>.tmp-*" directories: never list a half-written run
            if p.name.startswith(".") or not p.is_dir() or safe_child(root, p.name) is None:
                continue
            if any((p / m).is_file() for m in marker_files):
                try:
                    out.append((-p.stat().st_mtime, p.name, p))
                except OSError:  # removed, or between the two renames of an atomic rewrite
                    continue
        return [p for *_, p in sorted(out)]

    def run_ids(self) -> list[str]:
        """Newest first."""
        return [p.name for p in self._children(self.reports, RUN_MARKERS)]

    @staticmethod
    def _open(root: Path, name: str, what: str, root_name: str):
        path = safe_child(root, name)
        if path is None:
            raise StoreError(
                422, f"invalid {what} id {shown(name)}: a directory name under the {root_name} root"
            )
        if not path.is_dir():
            raise StoreError(404, f"{what} {shown(name)} not found")
        return path

    def run(self, run_id: str) -> Run:
        """A directory holding none of a run's files is no run (404), as ``run_ids`` says."""
        path = self._open(self.reports, run_id, "run", "reports")
        if not any((path / m).is_file() for m in RUN_MARKERS):
            raise StoreError(404, f"run {run_id!r} not found (no {', '.join(RUN_MARKERS)})")
        return Run(run_id, path)

    def listed(self, experiments: bool = False) -> list[Run] | list[Experiment]:
        """The runs (or experiments) of ``run_ids`` (``experiment_ids``), leaving out one removed
        since it was listed, or caught between the two renames of an atomic rewrite: one
        vanishing must not make the whole list a 404."""
        out = []
        for i in self.experiment_ids() if experiments else self.run_ids():
            try:
                out.append(self.experiment(i) if experiments else self.run(i))
            except StoreError:
                continue
        return out

    def _experiment_roots(self) -> list[Path]:
        """``runs/`` and ``runs/experiments/`` (run_experiment.py's default ``--out`` is
        ``runs/experiments/<name>``), the latter only where it stays inside ``runs/``."""
        sub = safe_child(self.runs, EXPERIMENTS_SUBDIR) if self.runs.is_dir() else None
        return [self.runs] + ([sub] if sub is not None and sub.is_dir() else [])

    def experiment_ids(self) -> list[str]:
        """Newest first; a name in both roots is the one directly under ``runs/``."""
        found: dict[str, Path] = {}
        for root in self._experiment_roots():
            for p in self._children(root, EXPERIMENT_MARKERS):
                found.setdefault(p.name, p)
        return [n for n, p in sorted(found.items(), key=lambda x: (-_mtime(x[1]), x[0]))]

    def experiment(self, exp_id: str) -> Experiment:
        """``runs/<id>``, else ``runs/experiments/<id>`` (the folder ``runs/experiments`` itself
        is not an experiment unless it holds one's files)."""
        if not valid_id(exp_id):  # 422 before any lookup: a 300-character name was an OSError
            self._open(self.runs, exp_id, "experiment", "runs")  # (500), a NUL a ValueError
        path = self._open(self.runs, exp_id, "experiment", "runs") if (
            self.runs / exp_id).is_dir() else None
        if path is not None and (exp_id != EXPERIMENTS_SUBDIR or any(
                (path / m).is_file() for m in EXPERIMENT_MARKERS)):
            return Experiment(exp_id, path)
        for root in self._experiment_roots()[1:]:
            sub = safe_child(root, exp_id)
            if sub is not None and sub.is_dir():
                return Experiment(exp_id, sub)
        self._open(self.runs, exp_id, "experiment", "runs")  # 422 for a bad id
        raise StoreError(404, f"experiment {shown(exp_id)} not found")
