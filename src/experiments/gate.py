"""The multi-seed CI gate: fail (exit 1) only when a miss is beyond seed-to-seed noise.

Absolute check ``metric>=bar`` on a setting fails when the whole bootstrap interval of the mean
over seeds lies on the wrong side of the bar (for ``>=``: upper end below it; for ``>``: upper end
at or below it; mirrored for ``<=``/``<``). Baseline comparison fails when the interval of the
change (current − baseline; paired by seed when the runs share seeds, so common worlds cancel)
lies entirely on the worse side of ``−max_drop``. A setting with failed cells fails its checks:
a crash is not a pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shocklab.errors import GateFailure, InputError

from .config import Bootstrap, higher_is_better
from .drops import drop_for
from .results import bootstrap_interval, by_seed, resampled_means


@dataclass(frozen=True)
class GateResult:
    check: str          # "consensus.recall>=0.9" or "consensus.recall vs baseline"
    setting_id: str
    metric: str
    passed: bool
    detail: str         # the figure and the bar it was held to
    label: str = ""     # the setting's parameters, for people ("threshold=3.0, window=28")

    @property
    def where(self) -> str:
        return f"{self.label} ({self.setting_id})" if self.label else self.setting_id

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.check} [{self.where}]: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _fmt(x: float, bar: float | None = None) -> str:
    """4 significant digits; more where 4 would put ``x`` on the other side of ``bar`` or on it
    ("CI [0.85, 0.9] is entirely below the bar >=0.9" for an upper end of 0.89996)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    for digits in range(4, 18):
        text = f"{x:.{digits}g}"
        shown = float(text)
        if bar is None or _at(x, bar) or (shown != bar and (shown < bar) == (x < bar)):
            return text
    return repr(x)


def _bar(bar: float) -> str:
    """The bar as given (``:g`` keeps 6 digits: 0.9999995 read as 1)."""
    return f"{bar:g}" if float(f"{bar:g}") == bar else repr(bar)


def _of_the_worlds(metric: str) -> bool:
    """``consensus.by_type.<event type>.recall``, ``…by_scope.<kind>…``: a figure only a world
    holding such an event has (experiments.metric_names); with none in any world the results
    have no such column at all, which is that figure without a value on every seed."""
    return ".by_type." in f".{metric}" or ".by_scope." in f".{metric}"


def _detector_of(metric: str) -> str | None:
    """The detector a metric judges (``detectors.<name>.recall``, ``lenient.detectors.<name>.f1``,
    ``false_alerts.detectors.<name>``, ``false_alerts.by_dimension.<dim>.detectors.<name>``),
    else None."""
    parts = metric.split(".")
    if parts[0] in ("strict", "lenient"):
        parts = parts[1:]
    if len(parts) >= 3 and parts[0] == "detectors":
        return parts[1]
    if len(parts) == 3 and parts[:2] == ["false_alerts", "detectors"]:
        return parts[2]
    if len(parts) == 5 and parts[:2] == ["false_alerts", "by_dimension"] \
            and parts[3] == "detectors":
        return parts[4]
    return None


def _level_of(metric: str) -> str | None:
    """The k-of-n level a metric judges (``consensus_levels.k3.recall``: ``k3``), else None."""
    parts = metric.removeprefix("lenient.").split(".")
    return parts[1] if len(parts) >= 3 and parts[0] == "consensus_levels" else None


def _not_run(group: pd.DataFrame, metric: str) -> str | None:
    """A detector that crashed (or was skipped) in a cell has no figures there: its metrics were
    averaged over the other seeds, so a gate on it passed with the detector failing on most of
    them — a crash is not a pass. So with a k-of-n level: a voter failing leaves a cell with
    fewer voters and no top level (``k3`` of two voters). None when the metric is neither a
    detector's nor a level's, or it was scored everywhere."""
    name, level = _detector_of(metric), _level_of(metric)
    if (name is None and level is None) or "consensus.events" not in group.columns:
        return None
    scored = group["consensus.events"].notna().to_numpy()   # the cell has a scorecard
    key = f"detectors.{name}.events" if name else f"consensus_levels.{level}.events"
    ran = _column(group, key).notna().to_numpy()   # set whenever it ran
    missing = int(np.sum(scored & ~ran))
    if not missing:
        return None
    if name is None:
        return (f"consensus level {level} was not scored on {missing} of {len(group)} seeds "
                "(fewer voters ran there: failed_detectors.count in results.parquet)")
    return (f"detector {name} did not run on {missing} of {len(group)} seeds (it failed or was "
            "skipped there: failed_detectors.count in results.parquet)")


def _column(frame: pd.DataFrame, metric: str) -> pd.Series:
    return frame[metric] if metric in frame.columns else pd.Series(math.nan, index=frame.index)


def _need_metric(results: pd.DataFrame, metric: str, what: str, ran_here: bool = True) -> None:
    """InputError unless ``results`` can hold ``metric``. ``ran_here``: these are this run's
    results, whose detector that ran on no seed fails its checks (a baseline's missing detector
    is a baseline of another analysis: bad input, as before)."""
    if "status" in results.columns and not (results["status"] == "ok").any():
        return  # no cell has figures (every cell failed): the checks report the failed cells
    if metric not in results.columns and not _of_the_worlds(metric) \
            and not (ran_here and (_detector_of(metric) or _level_of(metric))):
        close = [c for c in results.columns if c.endswith(metric.rsplit(".", 1)[-1])][:5]
        hint = f" (metrics ending alike: {', '.join(close)})" if close else ""
        raise InputError(f"{what}: metric {metric!r} is not in the results{hint}")


def _failed_cells(group: pd.DataFrame) -> str | None:
    bad = group[group["status"] != "ok"]
    if bad.empty:
        return None
    return f"{len(bad)} of {len(group)} cells failed (first: {bad['error'].iloc[0]})"


def _at(x: float, bar: float) -> bool:
    """``x`` is the bar up to float error. A mean of equal figures is not always the figure (six
    seeds' 0.8 average to 0.7999999999999999), so an interval ending exactly at the bar read as
    "entirely below" it, and unchanged figures as "worse than the baseline" (exit 1). Scorecard
    figures have 4 decimals: 1e-9 is far below any real difference of means."""
    return abs(x - bar) <= 1e-9 * max(1.0, abs(bar))


# when the interval (lo, hi) of the mean misses the bar beyond doubt
_MISSED = {">=": lambda lo, hi, bar: hi < bar and not _at(hi, bar),
           ">": lambda lo, hi, bar: hi <= bar or _at(hi, bar),
           "<=": lambda lo, hi, bar: lo > bar and not _at(lo, bar),
           "<": lambda lo, hi, bar: lo >= bar or _at(lo, bar)}


def check_absolute(results: pd.DataFrame, checks: list[tuple[str, str, float]], boot: Bootstrap
                   ) -> list[GateResult]:
    out = []
    for metric, op, bar in checks:
        name = f"{metric}{op}{_bar(bar)}"
        _need_metric(results, metric, f"--gate {name!r}")
        for sid, group in by_seed(results).groupby("setting_id", sort=True):
            failed = _failed_cells(group)
            if failed:
                out.append(GateResult(name, sid, metric, False, failed))
                continue
            not_run = _not_run(group, metric)
            if not_run:
                out.append(GateResult(name, sid, metric, False, not_run))
                continue
            x = _column(group, metric).to_numpy(dtype=float)
            lo, hi = bootstrap_interval(x, boot, f"{sid}/{metric}")  # the leaderboard's interval
            mean = float(np.nanmean(x)) if np.any(~np.isnan(x)) else math.nan
            if math.isnan(mean):
                out.append(
                    GateResult(name, sid, metric, False, f"{metric} has no value on any seed")
                )
                continue
            missed = bool(_MISSED[op](lo, hi, bar))
            ci = (f"mean {_fmt(mean, bar)}, {boot.confidence:.0%} CI [{_fmt(lo, bar)}, "
                  f"{_fmt(hi, bar)}] "
                  f"over {int(np.sum(~np.isnan(x)))} seeds")
            if missed:
                side = {">=": "entirely below", ">": "entirely at or below",
                        "<=": "entirely above", "<": "entirely at or above"}[op]
                detail = f"{ci} is {side} the bar {op}{_bar(bar)}"
            else:
                detail = f"{ci} is compatible with {op}{_bar(bar)}"
            out.append(GateResult(name, sid, metric, not missed, detail))
    return out


def load_baseline(path: str | Path, expected_kind: str = "sweep") -> pd.DataFrame:
    """Read a baseline results.parquet, or the one in an earlier experiment's output directory;
    InputError if unreadable, not one results table, or (its experiment.json says) another
    ``kind`` of experiment than ``expected_kind``."""
    path = Path(path)
    if path.is_dir():   # the earlier run's --out: it was "file not found"
        if not (path / "results.parquet").is_file():
            raise InputError(f"--baseline {path}: is a directory without results.parquet; give an "
                             "earlier experiment's output directory or its results.parquet")
        path = path / "results.parquet"
    if not path.is_file():
        raise InputError(f"--baseline {path}: file not found")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        raise InputError(
            f"--baseline {path}: not a readable parquet file ({type(exc).__name__})"
        ) from None
    missing = [c for c in ("setting_id", "seed", "status") if c not in df.columns]
    if missing:
        raise InputError(
            f"--baseline {path}: not an experiment results table (missing {', '.join(missing)})"
        )
    problem = _table_problem(df)
    if problem:
        raise InputError(f"--baseline {path}: not one experiment's results table ({problem})")
    kind = _kind_beside(path)
    if kind is not None and kind != expected_kind:
        raise InputError(f"--baseline {path}: holds a {kind} experiment's results, and this one "
                         f"is a {expected_kind} (no setting can compare)")
    return df


def _table_problem(df: pd.DataFrame) -> str | None:
    """What makes ``df`` something other than a results.parquet as written (None when nothing):
    two results tables concatenated, seeds as text, a metric column of words or ±inf (a cell
    stores none: json_ready writes inf as null) — each was compared as if it were one (text
    metrics: exit 3; inf: 'worse beyond noise', exit 1)."""
    from .results import metric_columns

    if not pd.api.types.is_integer_dtype(df["seed"]):
        return f"seed is {df['seed'].dtype}, not whole numbers"
    if df["setting_id"].isna().any() or df["status"].isna().any():
        return "a setting_id or status is missing"
    dup = df.duplicated(["setting_id", "seed"])
    if dup.any():
        row = df[dup].iloc[0]
        return f"setting {row['setting_id']} seed {row['seed']} appears twice"
    for col in metric_columns(df):
        if not (pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])):
            return f"metric {col} holds {df[col].dtype} values, not numbers"
        if np.isinf(df[col].to_numpy(dtype=float)).any():
            return f"metric {col} holds an infinite value"
    if len(df) and not (df["status"] == "ok").any():
        return "every cell of it failed: there is nothing to compare with"
    return None


def _kind_beside(path: Path) -> str | None:
    """The kind (sweep, detectability) in the experiment.json beside a results file, if any."""
    try:
        meta = json.loads((path.parent / "experiment.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    kind = meta.get("kind") if isinstance(meta, dict) else None
    return kind if isinstance(kind, str) else None


def align_baseline(baseline: pd.DataFrame, settings: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The baseline with each of its settings named by this experiment's ``settings`` (id ->
    overrides) whose overrides are the same once numbers are read alike: ``3`` and ``3.0`` are
    one setting (``grid.setting_key``) but hash to two ids, so a baseline written with
    the other spelling was silently left out of the comparison. A baseline setting that already
    has this experiment's id keeps it; a table without ``overrides`` is returned as it is."""
    from .grid import setting_key

    if "overrides" not in baseline.columns or baseline.empty:
        return baseline
    by_key = {setting_key(o): sid for sid, o in settings.items()}
    have = set(baseline["setting_id"])
    rename: dict[str, str] = {}
    for sid, text in (baseline[["setting_id", "overrides"]].drop_duplicates("setting_id")
                      .sort_values("setting_id").itertuples(index=False)):
        if sid in settings or not isinstance(text, str):
            continue
        try:
            key = setting_key(json.loads(text))
        except ValueError:
            continue
        target = by_key.get(key)
        if target is not None and target not in have and target not in rename.values():
            rename[sid] = target
    if not rename:
        return baseline
    return baseline.assign(setting_id=baseline["setting_id"].replace(rename))


def precheck_baseline(baseline: pd.DataFrame, setting_ids: list[str],
                      metrics: list[tuple[str, bool]]) -> list[str]:
    """Before any cell runs: InputError when the baseline can compare nothing (no setting in
    common, or a compared metric it does not hold: both were found only after every cell had
    run, and that exit 2 left the run's tables behind). Returns the settings the baseline has no
    run of (compared with nothing: the caller says so)."""
    common = sorted(set(setting_ids) & set(baseline["setting_id"]))
    if not common:
        raise InputError(
            "--baseline: no setting in common with this experiment (different overrides?)"
        )
    for metric, _ in metrics:
        _need_metric(baseline, metric, f"--baseline {metric} vs baseline", ran_here=False)
    return [sid for sid in setting_ids if sid not in common]


def check_baseline(results: pd.DataFrame, baseline: pd.DataFrame, metrics: list[tuple[str, bool]],
                   boot: Bootstrap, max_drop: float | dict[str, float] = 0.0
                   ) -> list[GateResult]:
    """``metrics``: (metric, higher_is_better). Settings are matched by id (same overrides;
    ``align_baseline`` first for numbers written alike); ``max_drop``: one tolerance, or per
    metric (``drops.drop_for``)."""
    common = sorted(set(results["setting_id"]) & set(baseline["setting_id"]))
    if not common:
        raise InputError(
            "--baseline: no setting in common with this experiment (different overrides?)"
        )
    out = []
    for metric, higher in metrics:
        name = f"{metric} vs baseline"
        drop = drop_for(max_drop, metric)
        _need_metric(results, metric, name)
        _need_metric(baseline, metric, f"--baseline {name}", ran_here=False)
        for sid in common:
            cur = results[results["setting_id"] == sid]
            failed = _failed_cells(cur) or _not_run(cur, metric)
            if failed:
                out.append(GateResult(name, sid, metric, False, failed))
                continue
            base = baseline[(baseline["setting_id"] == sid) & (baseline["status"] == "ok")]
            diff_lo, diff_hi, mean_change, how, c_mean, b_mean = _change_interval(
                cur, base, metric, boot, sid)
            if math.isnan(mean_change):
                out.append(
                    GateResult(
                        name,
                        sid,
                        metric,
                        False,
                        f"no comparable values (current {_fmt(c_mean)}, baseline {_fmt(b_mean)})",
                    )
                )
                continue
            worse = (diff_hi < -drop and not _at(diff_hi, -drop) if higher
                     else diff_lo > drop and not _at(diff_lo, drop))
            bar = ("-" if higher else "+") + f"{drop:g}" if drop else "0"
            detail = (
                f"mean {_fmt(c_mean)} vs baseline {_fmt(b_mean)}: change {_fmt(mean_change)}, "
                f"{boot.confidence:.0%} CI [{_fmt(diff_lo)}, {_fmt(diff_hi)}] ({how}) "
            )
            detail += (
                f"is entirely {'below' if higher else 'above'} {bar}: worse beyond seed-to-seed "
                "noise"
                if worse
                else f"is not entirely {'below' if higher else 'above'} {bar}: no worsening beyond "
                     "noise"
            )
            out.append(GateResult(name, sid, metric, not worse, detail))
    return out


def _change_interval(cur: pd.DataFrame, base: pd.DataFrame, metric: str, boot: Bootstrap, sid: str
                     ) -> tuple[float, float, float, str, float, float]:
    """(low, high, mean change, how, current mean, baseline mean): paired over the seeds both
    have a value on (the two means over those seeds too: over all seeds they did not add up to
    the change judged), else unpaired over all of each side's."""
    c = _column(cur, metric).set_axis(cur["seed"]).astype(float).dropna().sort_index()
    b = _column(base, metric).set_axis(base["seed"]).astype(float).dropna().sort_index()
    shared = sorted(set(c.index) & set(b.index))
    if len(shared) >= 2:
        d = (c.loc[shared] - b.loc[shared]).to_numpy()
        lo, hi = bootstrap_interval(d, boot, f"gate/{sid}/{metric}/paired")
        left = len(set(c.index) | set(b.index)) - len(shared)
        how = f"paired over {len(shared)} seeds" + (
            f"; {left} seed{'s' if left > 1 else ''} with a value on one side only left out"
            if left else "")
        return (lo, hi, float(d.mean()), how, float(c.loc[shared].mean()),
                float(b.loc[shared].mean()))
    c_all = float(c.mean()) if len(c) else math.nan
    b_all = float(b.mean()) if len(b) else math.nan
    if c.empty or b.empty:
        return math.nan, math.nan, math.nan, "unpaired", c_all, b_all
    # different seeds: resample each side independently and difference the means
    from shocklab.seeding import rng as named_rng

    gen = named_rng(boot.seed, f"gate/{sid}/{metric}/unpaired")
    cx, bx = c.to_numpy(), b.to_numpy()
    dm = resampled_means(cx, gen, boot.resamples) - resampled_means(bx, gen, boot.resamples)
    alpha = (1 - boot.confidence) / 2
    lo, hi = np.quantile(dm, [alpha, 1 - alpha])
    return (
        float(lo),
        float(hi),
        float(cx.mean() - bx.mean()),
        f"unpaired, {cx.size} vs {bx.size} seeds",
        c_all,
        b_all,
    )


# figures that describe the worlds or the bound, not how well a setting detects: the events a
# world holds (``events.*``), the oracle's best cut (a property of the world) and the oracle's own
# figures at the consensus' budget (they fall when the consensus makes fewer false positives)
_DESCRIPTIVE = ("events.", "oracle_best.", "oracle_equal_fp.oracle_", "oracle_equal_fp.fp_budget")


def describes_world(metric: str) -> bool:
    """Whether ``metric`` describes the worlds or the oracle bound rather than the detection
    (``_DESCRIPTIVE``; any scoring-mode prefix such as ``lenient.`` is read through)."""
    name = metric.split(".", 1)[1] if metric.startswith(("strict.", "lenient.")) else metric
    return name.startswith(_DESCRIPTIVE)


def baseline_metrics(
    checks: list[tuple[str, str, float]], metrics: list[str]
) -> list[tuple[str, bool]]:
    """What a baseline comparison looks at: the gated metrics (direction from the operator) and
    every configured metric (direction from its name) except those that describe the worlds or
    the bound (``describes_world``: fewer unwatched events is not a regression; a gate check on
    one still compares it). Until the twenty-first session a gate check narrowed it to the gated
    metrics: with ci_gate.yaml an F1 or delay regression passed."""
    seen: dict[str, bool] = {}
    for metric, op, _ in checks:
        seen.setdefault(metric, op in (">=", ">"))
    for m in metrics:
        if not describes_world(m):
            seen.setdefault(m, higher_is_better(m))
    return list(seen.items())


def enforce(results: list[GateResult]) -> None:
    """Raise GateFailure naming every miss (figure and bar) if any check failed."""
    misses = [r for r in results if not r.passed]
    if misses:
        shown = "; ".join(f"{r.check} [{r.where}]: {r.detail}" for r in misses[:3])
        more = f" (+{len(misses) - 3} more)" if len(misses) > 3 else ""
        raise GateFailure(f"{len(misses)} of {len(results)} gate checks failed: {shown}{more}")
