"""Where does count_likelihood's multi-day evidence lose against the exact oracle? (issue 9)

Per world (generated, with truth/): the scoring stages run once with the shipped config (plus
``--set``), then count_likelihood alone is re-run for each variant (``--variant "k=v;k=v"`` on
``detectors.count_likelihood``, or ``truth``: its expected value replaced by the simulator's
noise-free shock-free expectation, no level or weekday error in the null — what a perfect level
would give with cl's own fitted noise and calibration; ``truth_var``: the same expected value
with the estimated one's error variance still in the null, so shipped -> truth_var is the
estimate's actual error (noise, bias, contamination by the shock) and truth_var -> truth the
honest variance penalty); ``truth_fit``: the shipped expected value and null, with the noise
(a, φ) fitted on the residuals against the truth (truth_var's fit): how much of the actual error
is the noise fit inflated by past errors of the expected value. For every event the oracle
scores at 3 or more on a series a strict match allows, one row: the oracle's best score,
count_likelihood's best final score and its best calibrated score per window (1 / 3 / 7 days)
over the event's match window, the day of that best relative to the event's start, the event's
duration and profile.

    PYTHONPATH=$PWD/src:$PWD python bench/cl_windows.py /tmp/j9/w/s{1..20} \
        --set scoring.warmup_days=90 --variant truth --variant truth_var --out /tmp/x.csv

``--summary CSV...`` prints median ratios (cl best / oracle best) by duration, profile and oracle
score band, per variant and window.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

import _common  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _truth_wide(ctx, wide) -> np.ndarray:
    """The oracle's noise-free, shock-free expected value per [grid day, cl series]."""
    from analytics import pipeline as ap
    from evaluation.oracle import baseline_long, truth_baseline

    base = baseline_long(truth_baseline(ctx), ap.analysed_kpis(ctx)[0])
    piv = base.pivot_table(index="date", columns=["kpi", "dimension", "segment"],
                           values="value", aggfunc="first").reindex(wide.grid)
    return piv.reindex(columns=pd.MultiIndex.from_tuples(wide.keys)).to_numpy(float)


def load_world(d: Path) -> tuple:
    """(data set, truth) of a generated world; bad input (not a data directory, no truth/) is an
    ``InputError`` (one line, exit 2 under ``run_cli``)."""
    from analytics.loading import load_data_dir
    from evaluation.truth import find_truth
    from shocklab.errors import InputError

    ds, truth = load_data_dir(d), find_truth(d)
    if truth is None:
        raise InputError(f"{d}: no truth/ beside the data (a world from generate_data.py "
                         "is needed)")
    return ds, truth


def capture_core(det, inp) -> tuple:
    """Run detector ``det`` on ``inp``: (its long series, its core output before calibration:
    raw scores and the expected value)."""
    got = {}
    finish = det._finish

    def keep(series, core, inp_):
        got["series"], got["core"] = series, core
        return finish(series, core, inp_)

    det._finish = keep
    det.detect(inp)
    return got["series"], got["core"]


def run_cl(ctx, inp, overrides: dict, truth: str | None) -> tuple:
    """count_likelihood on the run's input: (wide, {column: calibrated [T, S]}, final [T, S])."""
    from analytics.detectors import count_likelihood as clm
    from analytics.detectors.base import combine_windows
    from analytics.detectors.baseline import Level
    from analytics.detectors.calibrate import Wide

    dc = ctx.config.detectors["count_likelihood"]
    if overrides:
        dc = clm.CountLikelihoodConfig.model_validate({**dc.model_dump(), **overrides})
    det = clm.CountLikelihood(dc, name="count_likelihood")
    got = {}
    orig_finish, orig_parts = det._finish, clm.expected_parts

    def finish(series, core, inp_):
        got["series"], got["core"] = series, core
        return orig_finish(series, core, inp_)

    def truth_parts(clean, wide, cfg):
        # expected value = factor x level.base = the truth; a constant level per series (its
        # median truth) keeps the factor near 1, as revenue's units (expected orders x factor)
        # assume
        tw = _truth_wide(ctx, wide)
        c = np.nanmedian(np.where(tw > 0, tw, np.nan), axis=0)[None, :] * np.ones(clean.shape)
        z = np.zeros(clean.shape)
        if truth in ("truth_var", "truth_fit"):  # the estimate's error variance kept
            _, c_w, est = orig_parts(clean, wide, cfg)
            lvl = Level(c, z, est.h0, est.c_flat, est.beta, est.n, est.c_slope)
            return tw / c, c_w, lvl
        lvl = Level(c, z, 1.0, z.copy(), z.copy(), cfg.window, None)
        return tw / c, z.copy(), lvl

    det._finish = finish
    orig_fit = clm.CountLikelihood._fit
    fitted = {}

    def keep_fit(*a, **k):
        fitted["fit"] = orig_fit(*a, **k)
        return fitted["fit"]

    if truth == "truth_fit":  # the noise fitted on residuals against the truth, scored as shipped
        clm.expected_parts = truth_parts
        clm.CountLikelihood._fit = staticmethod(keep_fit)
        try:
            clm.CountLikelihood(dc, name="count_likelihood").detect(inp)
        finally:
            clm.expected_parts = orig_parts
        clm.CountLikelihood._fit = staticmethod(lambda *a, **k: fitted["fit"])
    elif truth:
        clm.expected_parts = truth_parts
    try:
        det.detect(inp)
    finally:
        clm.expected_parts = orig_parts
        clm.CountLikelihood._fit = staticmethod(orig_fit)
    series, core = got["series"], got["core"]
    wide = Wide.of(series)
    cols = ["score", *sorted(c for c in core.columns if c.startswith("score@"))]
    cal = {}
    for c in cols:
        raw = core[c].astype(float).replace([np.inf, -np.inf], np.nan).to_numpy()
        cal[c] = wide.to(det.calibrate(series, raw, 1, c))
    final = combine_windows(np.stack([cal[c] for c in cols]))
    return wide, cal, final


def analyse_world(d: Path, sets: list[str], variants: list[tuple[str, dict, bool]]) -> list[dict]:
    from analytics import pipeline as ap
    from analytics.config import load_analysis_config
    from analytics.context import Incident, RunContext
    from evaluation.pipeline import STAGES, run
    from evaluation.scoring import Event, match_matrix
    from evaluation.truth import attach
    from experiments.cell import _memoized_detectors

    ds, truth = load_world(d)
    cfg = load_analysis_config(None, sets)
    rows = []
    with tempfile.TemporaryDirectory(prefix="j9k-clw-") as tmp:
        ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
        with _memoized_detectors():
            run(ctx, [s for s in STAGES if s[0] in ("kpis", "detect", "oracle", "consensus",
                                                      "score")])
        card = ctx.scorecard
        s = card["settings"]
        inp = ap.detector_input(ctx)
        det = ctx.detections
        orc = det[det["detector"] == "oracle"]
        runs = {name: run_cl(ctx, inp, ov, tr) for name, ov, tr in variants}
        wide = next(iter(runs.values()))[0]
        keys, grid = wide.keys, wide.grid
        ow = np.full(wide.shape, np.nan)
        oi = pd.MultiIndex.from_tuples(keys).get_indexer(
            pd.MultiIndex.from_frame(orc[["kpi", "dimension", "segment"]]))
        okr = oi >= 0
        ow[grid.get_indexer(orc["date"][okr]), oi[okr]] = orc["score"].to_numpy(float)[okr]
        evs = {e["event_id"]: e for e in json.loads((d / "truth" / "events.json").read_text())}
        by = {e["event_id"]: e for e in card["event_detail"]}
        for ev in [Event.from_dict(e) for e in truth.events]:
            e = by.get(ev.event_id)
            if e is None or e["expected"] or e["in_warmup"]:
                continue
            lo = ev.start - pd.Timedelta(days=s["early_days"])
            hi = ev.end + pd.Timedelta(days=s["late_days"])
            tm = np.flatnonzero((grid >= lo) & (grid <= hi))
            pseudo = [Incident("x", kp, dm, sg, lo, hi, dr, [], "single", 0, "low", 0, 0, 0, 0)
                      for kp, dm, sg in keys for dr in ("up", "down")]
            ok = match_matrix(pseudo, [ev], "strict", s["early_days"], s["late_days"],
                              s["min_effect"])[:, 0]
            allowed = [(j // 2, 1.0 if j % 2 == 0 else -1.0) for j in np.flatnonzero(ok)]

            def best(mat, allowed=allowed, tm=tm):
                top, at = -np.inf, None
                for si, sign in allowed:
                    v = sign * mat[tm, si]
                    if np.isfinite(v).any() and np.nanmax(v) > top:
                        top, at = float(np.nanmax(v)), (int(tm[np.nanargmax(v)]), si)
                return top, at

            ob, oat = best(ow)
            if oat is None or ob < 3.0:
                continue
            t0 = int(np.searchsorted(grid, ev.start))
            tr = evs[ev.event_id]
            row = {"world": d.name, "event_id": ev.event_id, "type": ev.type,
                   "scope_kind": ev.scope_kind, "profile": tr.get("profile"),
                   "days": (ev.end - ev.start).days + 1, "oracle": ob,
                   "oracle_pos": oat[0] - t0, "cons": "consensus" in e["detected_by"]}
            for name, (_, cal, final) in runs.items():
                b, at = best(final)
                row[f"{name}|final"] = b
                row[f"{name}|final_pos"] = at[0] - t0 if at else np.nan
                for c, m in cal.items():
                    k = c.partition("@")[2] or "1"
                    b, at = best(m)
                    row[f"{name}|w{k}"] = b
                    row[f"{name}|w{k}_pos"] = at[0] - t0 if at else np.nan
            rows.append(row)
    return rows


def _parse_variant(v: str) -> tuple[str, dict, bool]:
    if v in ("truth", "truth_var", "truth_fit"):
        return v, {}, v
    ov = {}
    for part in v.split(";"):
        if part.strip():
            k, _, val = part.partition("=")
            ov[k.strip()] = json.loads(val) if val.strip()[:1] in "[{0123456789-tfn" else val
    return v, ov, None


def summary(paths: list[Path]) -> None:
    e = pd.concat([pd.read_csv(p) for p in paths])
    names = sorted({c.split("|")[0] for c in e.columns if "|" in c},
                   key=lambda n: (n != "shipped", n))
    e["dur"] = pd.cut(e["days"], [0, 1, 3, 7, 14, 999], labels=["1", "2-3", "4-7", "8-14", "15+"])
    e["band"] = pd.cut(e["oracle"], [3, 5, 8, 1e9], labels=["3-5", "5-8", "8+"])
    print(f"events (oracle >= 3 on an allowed series): {len(e)}")
    for grp in ("dur", "profile", "band"):
        print(f"-- median cl / oracle by {grp} (final, then per window; n)")
        for n in names:
            parts = []
            for g, sub in e.groupby(grp, observed=True):
                f = np.nanmedian(sub[f"{n}|final"] / sub["oracle"])
                ws = " ".join(f"{np.nanmedian(sub[c] / sub['oracle']):.2f}"
                              for c in sorted(x for x in e.columns
                                              if x.startswith(f"{n}|w") and "_pos" not in x))
                parts.append(f"{g}: {f:.3f} [{ws}] n={len(sub)}")
            print(f"   {n[:28]:<28} " + " | ".join(parts))
    print("-- share of events with final >= 3.26 (per duration)")
    for n in names:
        print(f"   {n[:28]:<28} " + " | ".join(
            f"{g}: {np.mean(sub[f'{n}|final'] >= 3.26):.3f}"
            for g, sub in e.groupby("dur", observed=True))
            + f" | all {np.mean(e[f'{n}|final'] >= 3.26):.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("data", nargs="*", type=_common.path_arg)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--out", type=_common.path_arg)
    ap.add_argument("--summary", nargs="+", type=_common.path_arg)
    a = ap.parse_args(argv)
    if a.summary:
        _common.need_files(a.summary, "--summary")   # was a FileNotFoundError: exit 3
        summary(a.summary)
        return 0
    if not a.data or a.out is None:   # no --out: a ValueError (exit 3) after every world
        ap.error("give world directories and --out CSV, or --summary CSV ...")
    _common.need_dirs(a.data)
    _common.need_parent(a.out, "--out")
    variants = [("shipped", {}, None), *(_parse_variant(v) for v in a.variant)]
    rows = []
    for d in a.data:
        rows += analyse_world(d, a.set, variants)
        print(f"# {d}: {len(rows)} events", flush=True)
    pd.DataFrame(rows).to_csv(a.out, index=False)
    summary([a.out])
    return 0


if __name__ == "__main__":
    from shocklab.cli import run_cli

    raise SystemExit(run_cli(main))
