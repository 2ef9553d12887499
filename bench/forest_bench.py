"""Per-event voter evidence and consensus figures per variant, as JSON lines (issue 9, j9l).

Runs ``diagnose_detect.analyse_world`` with ``--why`` on each world for the shipped config and
each ``--variant``, and writes one JSON line per (world, variant): the consensus F1 / P / R, the
oracle's recall at equal FP and the ratio, the false alerts per series per 90 days, and per scored
event its type, scope kind, duration, primary direction, whether the consensus / oracle found it
and each detector's best calibrated score over its match window. ``summary`` prints the means and
the forest's evidence by duration, direction and type.

    PYTHONPATH=$PWD/src:$PWD python bench/forest_bench.py run /tmp/j9/w/s{1..20} \
        --set scoring.warmup_days=90 --variant 'detectors.isolation_forest.enabled=false' \
        --out /tmp/j9l/s.jsonl
    PYTHONPATH=$PWD/src:$PWD python bench/forest_bench.py summary /tmp/j9l/s.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

import _common  # noqa: E402
import diagnose_detect as dd  # noqa: E402
import numpy as np  # noqa: E402

from evaluation.truth import find_truth  # noqa: E402


def run(a) -> None:
    dd.WHY = not a.no_why
    variants = [("shipped", [])] + [(v, dd._variant(v)) for v in a.variant]
    with open(a.out, "a") as fh:
        for d in a.data:
            truth = find_truth(d)
            meta = {str(e["event_id"]): e for e in truth.events}
            res = dd.analyse_world(d, [[*a.set, *ov] for _, ov in variants])
            for (name, _), r in zip(variants, res, strict=True):
                c = r["card"]
                s = c["strict"]
                oe = s.get("oracle_equal_fp") or {}
                ev = []
                for w in r["why"]:
                    m = meta.get(w["event_id"], {})
                    dur = None
                    if m.get("start") and m.get("end"):
                        dur = (np.datetime64(str(m["end"])[:10]) - np.datetime64(
                            str(m["start"])[:10])).astype(int) + 1
                    ev.append({"id": w["event_id"], "type": w["type"], "scope": w["scope_kind"],
                               "why": w["why"], "oracle_hit": w["oracle_hit"], "dur": int(dur)
                               if dur is not None else None,
                               "dir": m.get("primary_direction"),
                               "best": {k: v[0] if np.isfinite(v[0]) else None
                                        for k, v in w["best"].items()}})
                fh.write(json.dumps({
                    "world": d.name, "variant": name,
                    "f1": s["consensus"]["f1"], "p": s["consensus"]["precision"],
                    "r": s["consensus"]["recall"], "fp": s["consensus"]["fp"],
                    "oracle_eq": oe.get("oracle_recall"), "ratio": oe.get("ratio"),
                    "false_alerts": c.get("false_alerts"), "sec": r["seconds"],
                    "events": ev}, default=float) + "\n")
                fh.flush()
            print(f"# {d.name} " + " ".join(
                f"{n[:40]}:{r['card']['strict']['consensus']['f1']:.3f}"
                for (n, _), r in zip(variants, res, strict=True)), flush=True)


def _m(v):
    v = [x for x in v if x is not None]
    return sum(v) / len(v) if v else float("nan")


def _is_type(t: str, e: dict) -> bool:
    return e["type"] == t


def summary(a) -> None:
    rows = [json.loads(x) for p in a.files for x in open(p)]
    by = defaultdict(list)
    for r in rows:
        by[r["variant"]].append(r)
    for name, rs in by.items():
        fa = defaultdict(list)
        for r in rs:
            for k, v in ((r["false_alerts"] or {}).get("detectors") or {}).items():
                fa[k].append(v)
            fa["consensus"].append((r["false_alerts"] or {}).get("consensus"))
        print(f"== {name}: n={len(rs)} F1 {_m([r['f1'] for r in rs]):.4f} "
              f"P {_m([r['p'] for r in rs]):.4f} R {_m([r['r'] for r in rs]):.4f} "
              f"ratio {_m([r['ratio'] for r in rs]):.4f} FP/world {_m([r['fp'] for r in rs]):.2f}"
              f" sec {_m([r['sec'] for r in rs]):.2f}  FA: "
              + " ".join(f"{k} {_m(v):.3f}" for k, v in sorted(fa.items())))
        if not a.detail:
            continue
        ev = [e for r in rs for e in r["events"]
              if (e["best"].get("oracle") or -9) >= 3.0]
        groups = {
            "all": lambda e: True,
            "dur1": lambda e: e["dur"] == 1, "dur2-7": lambda e: 2 <= (e["dur"] or 0) <= 7,
            "dur8+": lambda e: (e["dur"] or 0) >= 8,
            "up": lambda e: e["dir"] == "up", "down": lambda e: e["dir"] == "down",
            "orc3-5": lambda e: e["best"]["oracle"] < 5,
            "missed": lambda e: e["why"] != "hit",
        }
        for t in sorted({e["type"] for e in ev}):
            groups["T:" + t] = partial(_is_type, t)
        dets = ["oracle", "count_likelihood", "rolling_zscore", "isolation_forest"]
        print("   visible events (oracle >= 3): group n hit  median best " + "/".join(dets)
              + "  | median ratio to oracle  | share >= 3.26")
        for g, f in groups.items():
            sel = [e for e in ev if f(e)]
            if not sel:
                continue
            med = [np.median([e["best"].get(d) or 0 for e in sel]) for d in dets]
            rat = [np.median([(e["best"].get(d) or 0) / e["best"]["oracle"] for e in sel])
                   for d in dets[1:]]
            sh = [np.mean([(e["best"].get(d) or 0) >= 3.26 for e in sel]) for d in dets[1:]]
            hit = np.mean([e["why"] == "hit" for e in sel])
            print(f"   {g:<22} {len(sel):4d} {hit:.2f}  " + " ".join(f"{x:5.2f}" for x in med)
                  + "  | " + " ".join(f"{x:.2f}" for x in rat)
                  + "  | " + " ".join(f"{x:.2f}" for x in sh))


def main() -> int:
    ap = _common.parser(__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("data", nargs="+", type=_common.path_arg)
    r.add_argument("--set", action="append", default=[])
    r.add_argument("--variant", action="append", default=[])
    r.add_argument("--out", type=_common.path_arg, required=True)
    r.add_argument("--no-why", action="store_true", help="figures only (faster)")
    s = sub.add_parser("summary")
    s.add_argument("files", nargs="+", type=_common.path_arg)
    s.add_argument("--detail", action="store_true")
    a = ap.parse_args()
    # before --out is made (a missing world was an AttributeError traceback after it was)
    if a.cmd == "run":
        _common.need_dirs(a.data)
        _common.need_parent(a.out, "--out")   # appended to: was a FileNotFoundError traceback
    else:
        _common.need_files(a.files)
    run(a) if a.cmd == "run" else summary(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(_common.run(main))
