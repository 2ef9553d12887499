"""insights.json's channels section against the simulator's truth: false flags, missed
shortfalls and the error of the reported changes.

    python generate_data.py --config config/scenarios/random_world.yaml --seed 1 --out /tmp/cw/s1
    python run_analysis.py --data /tmp/cw/s1 --out /tmp/cw/runs/after/s1 --quiet
    python bench/bench_channels.py /tmp/cw/runs/after/s1 [/tmp/cw/runs/after/s2 …]

Reads each run's insights.json (channels) and kpis_daily.csv, and its data directory's (the path
is in run.json) truth/counterfactual_daily.csv (the twin without unexpected events) and
truth/events.json. A channel's true change of a KPI (revenue, conversion) is its actual /
counterfactual ratio over the window against the same ratio over the 4 weeks before it: what the
events did, the season and planned days cancelling out. Its true change is the worse of the two
(a channel is flagged when either falls far enough). Per world: channels, flags, false flags (a
flagged channel whose true change is above -10 %), missed shortfalls (a true change at or below
-15 % not flagged), the median |reported - true| in points over channels x {revenue,
conversion}, and event flags (a flagged channel overlapped by an event on the store or on the
channel whose realized in-scope revenue or conversion effect is at or below -15 %). Figures:
docs/history/insights.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from _common import parser, path_arg  # this script's folder is on sys.path

FALSE_ABOVE = -10.0  # a flag on a channel whose true change is above this is false
SHORTFALL_AT = -15.0  # a true change at or below this is a shortfall to flag
BASELINE_DAYS = 28  # the channels' baseline weeks (insights channels.baseline_weeks: 4)


def _ratio(df: pd.DataFrame, days: pd.DatetimeIndex) -> tuple[float, float]:
    """Revenue and conversion (orders / sessions) over ``days`` of a date-indexed frame."""
    s = df.reindex(days)[["revenue", "orders", "sessions"]].sum()
    conv = s["orders"] / s["sessions"] if s["sessions"] else np.nan
    return float(s["revenue"]), float(conv)


def _real_event(events: list[dict], channel: str, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    for e in events:
        if e.get("expected") or e["scope"] not in ({}, {"channel": channel}):
            continue
        if pd.Timestamp(e["start"]) > end or pd.Timestamp(e["end"]) < start:
            continue
        eff = e.get("scope_effects") or {}
        if min(eff.get("revenue") or 0.0, eff.get("conversion_rate") or 0.0) <= -0.15:
            return True
    return False


def channel_table(run: Path) -> pd.DataFrame:
    """One row per channel of a run: reported and true changes (%), flag, event overlap."""
    from evaluation.truth import run_data_dir
    from shocklab.errors import InputError

    data = run_data_dir(run, ("insights.json", "kpis_daily.csv"),
                        ("counterfactual_daily.csv", "events.json"))
    ch = json.loads((run / "insights.json").read_text())["channels"]
    if not ch:
        raise InputError(f"{run}: insights.json has no channels section (one channel, or no "
                         "channel data)")
    start, end = pd.Timestamp(ch["window_start"]), pd.Timestamp(ch["window_end"])
    window = pd.date_range(start, end)
    base = pd.date_range(start - pd.Timedelta(days=BASELINE_DAYS), start - pd.Timedelta(days=1))
    kp = pd.read_csv(run / "kpis_daily.csv", parse_dates=["date"])
    kp = kp.loc[kp["dimension"] == "channel"]
    cf = pd.read_csv(data / "truth" / "counterfactual_daily.csv", parse_dates=["date"])
    events = json.loads((data / "truth" / "events.json").read_text())
    rows = []
    for c in ch["channels"]:
        s = c["channel"]
        act = kp.loc[kp["segment"] == s].set_index("date")
        twin = cf.loc[cf["channel"] == s].set_index("date")
        (aw_r, aw_c), (ab_r, ab_c) = _ratio(act, window), _ratio(act, base)
        (cw_r, cw_c), (cb_r, cb_c) = _ratio(twin, window), _ratio(twin, base)
        true_rev = ((aw_r / cw_r) / (ab_r / cb_r) - 1) * 100
        true_conv = ((aw_c / cw_c) / (ab_c / cb_c) - 1) * 100
        rows.append({"run": run.name, "channel": s, "flag": bool(c["underperforming"]),
                     "rep_rev": c["revenue_vs_baseline_pct"],
                     "rep_conv": c["conversion_vs_baseline_pct"],
                     "true_rev": true_rev, "true_conv": true_conv,
                     "event": _real_event(events, s, start, end)})
    t = pd.DataFrame(rows)
    t["true"] = t[["true_rev", "true_conv"]].min(axis=1)
    t["false_flag"] = t["flag"] & (t["true"] > FALSE_ABOVE)
    t["missed"] = ~t["flag"] & (t["true"] <= SHORTFALL_AT)
    return t


def summarize(t: pd.DataFrame) -> dict[str, float]:
    """The metrics of a table of channels (one world or many)."""
    err = pd.concat([(t["rep_rev"] - t["true_rev"]).abs(),
                     (t["rep_conv"] - t["true_conv"]).abs()]).dropna()
    return {"channels": len(t), "flags": int(t["flag"].sum()),
            "false_flags": int(t["false_flag"].sum()), "missed": int(t["missed"].sum()),
            "shortfalls": int((t["true"] <= SHORTFALL_AT).sum()),
            "event_flags": int((t["flag"] & t["event"]).sum()),
            "median_abs_err": float(err.median()) if len(err) else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=path_arg,
                    help="run directories (run_analysis.py --out)")
    ap.add_argument("--per-world", action="store_true", help="print one line per world")
    a = ap.parse_args(argv)
    t = pd.concat([channel_table(r) for r in a.runs], ignore_index=True)
    if a.per_world:
        per = pd.DataFrame({r: summarize(g) for r, g in t.groupby("run", sort=False)}).T
        print(per.round(2).to_string())
    tot = summarize(t)
    print(f"{len(a.runs)} worlds: " + ", ".join(
        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in tot.items()))
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]
    from shocklab.cli import run_cli

    raise SystemExit(run_cli(main))
