"""Scratch (session 49, rule M): the oracle's |z| >= 3 exceedances per KPI and dimension on
shock-free worlds (days >= 120), with the truth's conversion cell-mix term and without it.
usage: PYTHONPATH=src python session49_nullconv.py world_dir ..."""
import sys

import numpy as np
import pandas as pd

from analytics.detectors import DetectorInput
from analytics.kpis import compute_kpis_daily, to_long
from analytics.loading import load_data_dir
from evaluation.oracle import ExactOracle, OracleConfig, baseline_long
from evaluation.truth import find_truth

KPIS = ["revenue", "orders", "sessions", "conversion_rate", "aov"]
rows = []
for w in sys.argv[1:]:
    ds = load_data_dir(w)
    series = to_long(compute_kpis_daily(ds), KPIS, ["overall", "channel", "country", "category"])
    base = find_truth(ds.path).baseline
    for lab, b in (("new", base), ("old", base.drop(columns="conversion_mix_cv2"))):
        for win in ([], [2, 3, 4, 7]):
            got = ExactOracle(OracleConfig(windows=win)).detect(
                DetectorInput(series=series, baseline=baseline_long(b, KPIS)))
            got = got[got["actual"].notna()]
            got = got[got["date"] >= got["date"].min() + pd.Timedelta(days=120)]
            g = (got.assign(ex=np.abs(got["score"]) >= 3).groupby(["kpi", "dimension"])
                 .agg(ex=("ex", "sum"), n=("ex", "size"), sd=("score", "std")))
            g["world"], g["lab"], g["win"] = w.split("/")[-1], lab, "1" if not win else "1-7"
            rows.append(g.reset_index())
r = pd.concat(rows)
t = r.groupby(["win", "lab", "kpi", "dimension"]).agg(ex=("ex", "sum"), n=("n", "sum"),
                                                      sd=("sd", "mean"))
t["rate_x_nominal"] = (t.ex / t.n / 0.0027).round(2)
print(t.to_string())
