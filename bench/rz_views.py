"""rolling_zscore's two views, own level and share of parent, against count_likelihood (issue 9).

For each world, the shipped run (detect, oracle, consensus, score) plus rolling_zscore re-run as
views: ``own`` (reference own: the own 1/3/7-day windows, Bonferroni), ``share`` (reference parent,
gate off: a slice's share windows only; overall series keep their own view) and ``shareg``
(reference parent with the shipped gate). Prints

- per event the consensus misses and the oracle finds (TRAIN worlds with truth): the best score
  of each detector and view on the series and days a strict match allows;
- on shock-free worlds (``--null``): the Pearson correlation of each view's calibrated scores
  with count_likelihood's (first 120 days and planned calendar days left out), over all series
  and over slices only.

    PYTHONPATH=$PWD/src:$PWD python bench/rz_views.py /tmp/j9/w/s{1..20} \
        --set scoring.warmup_days=90
    PYTHONPATH=$PWD/src:$PWD python bench/rz_views.py /tmp/j9/w/n{1..5} --null
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

import _common  # noqa: E402  (this script's folder is on sys.path)
import diagnose_detect as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics import pipeline as ap  # noqa: E402
from analytics.config import load_analysis_config  # noqa: E402
from analytics.context import RunContext  # noqa: E402
from analytics.detectors.base import calendar_mask  # noqa: E402
from analytics.detectors.rolling_zscore import RollingZScore  # noqa: E402
from analytics.loading import load_data_dir  # noqa: E402
from evaluation.pipeline import STAGES, run  # noqa: E402
from evaluation.scoring import Event  # noqa: E402
from evaluation.truth import attach, find_truth  # noqa: E402

VIEWS = {
    "own": {"reference": "own"},
    "share": {"reference": "parent", "share_gate": None},
    "shareg": {"reference": "parent"},
}
KEYS = ["kpi", "dimension", "segment"]


def views(ctx) -> pd.DataFrame:
    dc = ctx.config.detectors["rolling_zscore"]
    inp = ap.detector_input(ctx)
    out = []
    for name, upd in VIEWS.items():
        det = RollingZScore(dc.model_copy(update=upd), name="rz_" + name)
        out.append(det.detect(inp))
    return pd.concat(out, ignore_index=True)


def one_world(d: Path, overrides: list[str], null: bool) -> dict:
    cfg = load_analysis_config(None, overrides)
    ds, truth = load_data_dir(d), find_truth(d)
    with tempfile.TemporaryDirectory(prefix="j9m-") as tmp:
        ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
        names = ("kpis", "detect") if null else ("kpis", "detect", "oracle", "consensus", "score")
        run(ctx, [s for s in STAGES if s[0] in names])
        extra = views(ctx)
        ctx.detections = pd.concat([ctx.detections, extra], ignore_index=True)
        if null:
            return {"det": ctx.detections, "cal": ds.tables.get("marketing_calendar")}
        events = [Event.from_dict(e) for e in truth.events]
        warm = set(ctx.scorecard.get("warmup", {}).get("event_ids", []))
        events = [e for e in events if e.event_id not in warm]
        return {"why": dd.explain_misses(ctx, events, ctx.scorecard)}


def null_corr(det: pd.DataFrame, data) -> list[tuple]:
    piv = det.pivot_table(index=[*KEYS, "date"], columns="detector", values="score",
                          aggfunc="first")
    piv = piv.reset_index()
    t0 = piv["date"].min() + pd.Timedelta(days=120)
    keep = piv["date"] >= t0
    cal = data
    if cal is not None and len(cal):
        keep &= ~calendar_mask(piv[[*KEYS, "date"]], cal)
    piv = piv[keep]
    rows = []
    for scope, sel in (("all", np.ones(len(piv), bool)),
                       ("slices", (piv["dimension"] != "overall").to_numpy())):
        sub = piv[sel]
        for a, b in (("count_likelihood", "rolling_zscore"), ("count_likelihood", "rz_own"),
                     ("count_likelihood", "rz_share"), ("count_likelihood", "rz_shareg"),
                     ("isolation_forest", "rolling_zscore"), ("isolation_forest", "rz_own"),
                     ("isolation_forest", "rz_share"), ("isolation_forest", "rz_shareg"),
                     ("rz_own", "rz_share"), ("rz_own", "rz_shareg"),
                     ("count_likelihood", "isolation_forest")):
            if a not in sub or b not in sub:
                continue
            x, y = sub[a].to_numpy(float), sub[b].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            rows.append((scope, a, b, int(ok.sum()), float(np.corrcoef(x[ok], y[ok])[0, 1])))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("data", nargs="+", type=_common.path_arg)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--null", action="store_true")
    a = p.parse_args(argv)
    _common.need_dirs(a.data)   # was load_data_dir's InputError as a traceback, exit 1
    if a.null:
        allrows = []
        for d in a.data:
            r = one_world(d, a.set, True)
            rows = null_corr(r["det"], r["cal"])
            allrows += rows
            print(f"# {d.name}: " + "  ".join(f"{s}:{x[:4]}-{y[:8]} {c:.2f}"
                                              for s, x, y, n, c in rows), flush=True)
        df = pd.DataFrame(allrows, columns=["scope", "a", "b", "n", "r"])
        print(df.groupby(["scope", "a", "b"], sort=False)["r"].mean().round(3).to_string())
        return 0
    rows = []
    for d in a.data:
        for w in one_world(d, a.set, False)["why"]:
            rec = {"world": d.name, "event": w["event_id"], "type": w["type"],
                   "scope": w["scope_kind"], "why": w["why"], "oracle_hit": w["oracle_hit"]}
            for n, (v, where) in w["best"].items():
                rec[n] = v
                rec[n + "_on"] = "/".join(where) if where else ""
            rows.append(rec)
        print(f"# {d.name}", flush=True)
    df = pd.DataFrame(rows)
    df.to_csv("/tmp/j9m/views_" + a.data[0].name + ".csv", index=False)
    cols = ["count_likelihood", "rolling_zscore", "isolation_forest", "rz_own", "rz_share",
            "rz_shareg", "oracle"]
    for title, sel in (("missed by consensus, found by the oracle",
                        (df["why"] != "hit") & df["oracle_hit"]),
                       ("hit", df["why"] == "hit"),
                       ("all visible (oracle hit)", df["oracle_hit"])):
        sub = df[sel]
        print(f"== {title}: n={len(sub)}")
        for scope in [*sorted(sub["scope"].unique()), "ALL"]:
            s = sub if scope == "ALL" else sub[sub["scope"] == scope]
            print(f"   {scope:<16} n={len(s):<4}" + "  ".join(
                f"{c[:9]} {np.nanmedian(s[c].replace(-np.inf, np.nan)):.2f}"
                for c in cols if c in s))
        if title.startswith("missed"):
            s = sub[sub["scope"] != "overall"]
            print(f"   slices: share > own on {(s['rz_share'] > s['rz_own']).sum()} of {len(s)};"
                  f" shareg > own {(s['rz_shareg'] > s['rz_own']).sum()}; "
                  f"share >= 3.26 {(s['rz_share'] >= 3.26).sum()}, own >= 3.26 "
                  f"{(s['rz_own'] >= 3.26).sum()}, cl >= 3.26 "
                  f"{(s['count_likelihood'] >= 3.26).sum()}")
            for t in sorted(sub["type"].unique()):
                s = sub[sub["type"] == t]
                print(f"   {t:<18} n={len(s):<3}" + "  ".join(
                    f"{c[:9]} {np.nanmedian(s[c].replace(-np.inf, np.nan)):.2f}"
                    for c in cols if c in s))
    return 0


if __name__ == "__main__":
    raise SystemExit(_common.run(main))
