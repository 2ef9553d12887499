"""Scratch (session 49, rule D): per world, the shipped analysis once, the bound twice — its
incidents matched from their run's first day only (ranked, as shipped until now) and also from
their first day reaching each cut (D). Prints per world and the pooled means.
usage: PYTHONPATH=src:. python bound.py OUT.json world_dir ..."""
import json
import sys
import tempfile
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, "bench")
from diagnose_detect import STAGES, RunContext, attach, find_truth, load_analysis_config, load_data_dir, run  # noqa
from evaluation.pipeline import stage_score


def one(d):
    d = Path(d)
    ds, truth = load_data_dir(d), find_truth(d)
    cfg = load_analysis_config(None, ["scoring.warmup_days=90"])
    with tempfile.TemporaryDirectory() as tmp:
        ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
        run(ctx, [s for s in STAGES if s[0] in ("kpis", "detect", "oracle", "consensus", "score")])
        out = {"world": d.name}
        for name in ("D", "ranked"):
            if name == "ranked":
                ctx.oracle_onsets = {}
                stage_score(ctx)
            s = ctx.scorecard["strict"]
            out[name] = {"eq": s["oracle_equal_fp"], "best": s["oracle_best"],
                         "f1": s["consensus"]["f1"]}
    return out


if __name__ == "__main__":
    with Pool(2) as p:
        res = p.map(one, sys.argv[2:], chunksize=1)
    json.dump(res, open(sys.argv[1], "w"), indent=1)
    def m(v):
        v = [x for x in v if x is not None]
        return sum(v) / len(v) if v else float("nan")
    for name in ("ranked", "D"):
        eq = [r[name]["eq"] for r in res]
        print(f"{name:7} oracle recall at equal FP {m([e['oracle_recall'] for e in eq]):.4f}  "
              f"ratio {m([e['ratio'] for e in eq]):.4f}  above 1: "
              f"{[r['world'] for r in res if (r[name]['eq']['ratio'] or 0) > 1 + 1e-9]}  "
              f"oracle best F1 {m([r[name]['best']['f1'] for r in res if r[name]['best']]):.4f}  "
              f"consensus F1 {m([r[name]['f1'] for r in res]):.4f}")
