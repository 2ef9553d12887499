"""The order value's exact null (truth/order_value_null.csv) and the oracle's revenue / AOV tails
built from it (``evaluation.compound_null``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.simulation.simtools import tiny_config

from analytics.detectors import DetectorInput
from analytics.kpis import compute_kpis_daily, to_long
from analytics.loading import load_data_dir
from evaluation.compound_null import compound_tails, scope_atoms
from evaluation.oracle import ExactOracle, OracleConfig, baseline_long
from evaluation.truth import find_truth
from simulation.api import generate

KPIS = ["revenue", "orders", "sessions", "conversion_rate", "aov"]
QUIET = tiny_config(events=[], calendar=[], seed=12,
                    period={"start": "2023-01-01", "end": "2024-12-31"},
                    traffic={"base_sessions": 1500})


@pytest.fixture(scope="module")
def quiet(tmp_path_factory) -> Path:
    """The tiny world with no event and no calendar, two years at 1 500 sessions a day."""
    out = tmp_path_factory.mktemp("ov") / "d"
    generate(QUIET, out)
    return out


def test_written_deterministically_and_listed(quiet, tmp_path):
    out = tmp_path / "again"
    generate(QUIET, out)
    a = (quiet / "truth" / "order_value_null.csv").read_bytes()
    assert a == (out / "truth" / "order_value_null.csv").read_bytes()
    assert a.splitlines()[0] == b"scope,tau,value,p"
    manifest = json.loads((quiet / "manifest.json").read_text())
    assert "truth/order_value_null.csv" in manifest["files"]


def test_a_damaged_table_is_one_clear_input_error(quiet, tmp_path):
    """A truth/order_value_null.csv without its probabilities, or with text in them, is an input
    error naming the file and the column (exit 2), not a crash in the oracle."""
    import shutil

    from shocklab.errors import InputError

    for bad, says in (("value\n1.0\n", "missing column 'scope'"),
                      ("scope,value,p\nall,1.0,x\n", "column 'p' must be numeric")):
        d = tmp_path / f"d{len(bad)}"
        shutil.copytree(quiet, d)
        (d / "truth" / "order_value_null.csv").write_text(bad)
        with pytest.raises(InputError, match=says) as err:
            find_truth(d)
        assert "order_value_null.csv" in str(err.value) and "\n" not in str(err.value)


def test_the_table_is_the_distribution_of_the_drawn_orders(quiet):
    """Kept orders of a shock-free world against the table: mean, spread and the upper tail (the
    part a gamma by moments gets wrong), and tau against the share of orders touching a
    category."""
    atoms = scope_atoms(pd.read_csv(quiet / "truth" / "order_value_null.csv"))
    assert set(atoms) == {"all", "books", "gadgets"}
    orders = pd.read_csv(quiet / "orders.csv")
    orders = orders[orders["status"] != "cancelled"]
    v = np.sort(orders["net_revenue"].to_numpy(float))
    assert len(v) > 15_000
    vals, p = atoms["all"]
    mean, sd = p @ vals, np.sqrt(p @ vals**2 - (p @ vals) ** 2)
    assert abs(v.mean() - mean) < 4 * sd / np.sqrt(len(v))
    assert abs(v.std() / sd - 1) < 0.03
    cdf = np.cumsum(p)
    for q in (0.5, 0.9, 0.99, 0.999):
        emp = np.quantile(v, q)
        table = np.interp(q, cdf, vals)
        assert abs(emp / table - 1) < (0.04 if q < 0.999 else 0.12), (q, emp, table)
    # the share of orders with a book line is tau
    items = pd.read_csv(quiet / "order_items.csv")
    products = pd.read_csv(quiet / "products.csv")
    books = set(products.loc[products["category"] == "books", "product_id"])
    kept = items[items["order_id"].isin(orders["order_id"])]
    share = kept.loc[kept["product_id"].isin(books), "order_id"].nunique() / len(orders)
    tau = pd.read_csv(quiet / "truth" / "order_value_null.csv").groupby("scope")["tau"].first()
    assert tau["all"] == 1.0
    assert abs(share - tau["books"]) < 4 * np.sqrt(tau["books"] * (1 - tau["books"]) / len(orders))


def test_tails_match_monte_carlo():
    """Sums of n values and compound sums over a negative-binomial count against 400 000 draws,
    in both tails."""
    rng = np.random.default_rng(0)
    # order values: a skewed value (log-normal, sd 1) on 400 atoms
    vals = np.exp(np.linspace(np.log(2.0), np.log(2000.0), 400))
    p = np.exp(-0.5 * ((np.log(vals) - np.log(40.0)) / 1.0) ** 2) * vals  # density x spacing
    p /= p.sum()
    draws = 400_000
    for n in (1, 3, 12):
        s = rng.choice(vals, size=(draws, n), p=p).sum(axis=1)
        xs = np.quantile(s, [0.002, 0.05, 0.5, 0.95, 0.998])
        up, lo = compound_tails(vals, p, xs, n=np.full(xs.size, n))
        for x, u, low in zip(xs, up, lo, strict=True):
            assert abs(u - np.mean(s > x)) < 0.002 + 0.08 * u, (n, x, u, np.mean(s > x))
            assert abs(low - np.mean(s < x)) < 0.002 + 0.08 * low, (n, x, low, np.mean(s < x))
    m, v = 4.0, 9.0
    r = m**2 / (v - m)
    counts = rng.negative_binomial(r, r / (r + m), size=draws)
    idx = rng.choice(vals.size, size=counts.sum(), p=p)
    s = np.bincount(np.repeat(np.arange(draws), counts), weights=vals[idx], minlength=draws)
    xs = np.quantile(s[s > 0], [0.01, 0.5, 0.99, 0.999])
    up, lo = compound_tails(vals, p, xs, m=np.full(xs.size, m), v=np.full(xs.size, v))
    for x, u, low in zip(xs, up, lo, strict=True):
        assert abs(u - np.mean(s > x)) < 0.002 + 0.08 * u, (x, u, np.mean(s > x))
        assert abs(low - np.mean(s < x)) < 0.002 + 0.08 * low, (x, low, np.mean(s < x))
    # no order at all: half the point mass at 0 (mid-p), P(N = 0) from the count
    up0, lo0 = compound_tails(vals, p, np.array([0.0]), m=np.array([m]), v=np.array([v]))
    assert lo0[0] == pytest.approx(0.5 * np.mean(s == 0), abs=0.002)
    # a sum beyond the grid: nothing above it
    up, lo = compound_tails(vals, p, np.array([1e9]), n=np.array([2.0]))
    assert up[0] == 0.0 and lo[0] == 1.0


def test_oracle_revenue_and_aov_are_calibrated_with_the_exact_null(quiet):
    """On the shock-free world, 1-day revenue and AOV scores from the exact order values keep
    the nominal false-alarm rate in the tails, closer than the gamma by moments."""
    ds = load_data_dir(quiet)
    truth = find_truth(ds.path)
    series = to_long(compute_kpis_daily(ds), KPIS, ["overall", "channel", "country", "category"])
    inp = DetectorInput(series=series, baseline=baseline_long(truth.baseline, KPIS))
    exact = ExactOracle(OracleConfig(windows=[]))
    exact.order_atoms = scope_atoms(truth.order_values)
    out = exact.detect(inp)
    gamma = ExactOracle(OracleConfig(windows=[])).detect(inp)
    for kpi in ("revenue", "aov"):
        s = out.loc[(out["kpi"] == kpi) & out["actual"].notna(), "score"].to_numpy()
        g = gamma.loc[(gamma["kpi"] == kpi) & gamma["actual"].notna(), "score"].to_numpy()
        assert len(s) > 4000
        assert abs(s.mean()) < 0.15 and 0.85 < s.std() < 1.15, (kpi, s.mean(), s.std())
        # P(s >= 3) = 0.135 % under the null, each side
        assert np.mean(s >= 3) < 0.004 and np.mean(s <= -3) < 0.004, kpi
        assert not np.array_equal(s, g), kpi
    # the gamma's lower revenue tail (few orders: a point mass at 0 and a gamma) is too heavy
    rev = (out["kpi"] == "revenue") & out["actual"].notna()
    exact_low = np.mean(out.loc[rev, "score"] <= -3)
    gamma_low = np.mean(gamma.loc[rev, "score"] <= -3)
    assert abs(exact_low - 0.00135) < abs(gamma_low - 0.00135), (exact_low, gamma_low)


def test_the_scores_are_the_same_floats_in_chunks_of_whole_series(quiet, monkeypatch):
    """The exact scores are computed a chunk of whole series at a time (``CHUNK_ROWS``), the
    order values' FFT a batch of ``CHUNK`` distributions at a time: bit for bit the scores of
    one chunk and one batch (every step is per point or per series), each series whole in one
    chunk."""
    from evaluation import compound_null, oracle

    ds = load_data_dir(quiet)
    truth = find_truth(ds.path)
    series = to_long(compute_kpis_daily(ds), KPIS, ["overall", "channel", "country", "category"])
    inp = DetectorInput(series=series, baseline=baseline_long(truth.baseline, KPIS))

    def scores() -> tuple[np.ndarray, list[pd.DataFrame]]:
        det = ExactOracle(OracleConfig(windows=[3, 7]))
        det.order_atoms = scope_atoms(truth.order_values)
        chunks: list[pd.DataFrame] = []
        whole = det._chunk_scores

        def spy(m: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
            chunks.append(m)
            return whole(m, codes)

        monkeypatch.setattr(det, "_chunk_scores", spy)
        return det.detect(inp)["score"].to_numpy(), chunks

    monkeypatch.setattr(oracle, "CHUNK_ROWS", 10**9)
    monkeypatch.setattr(compound_null, "CHUNK", 1024)
    one, chunks = scores()
    assert len(chunks) == 1
    monkeypatch.setattr(oracle, "CHUNK_ROWS", 2000)   # ~3 series of two years a chunk
    monkeypatch.setattr(compound_null, "CHUNK", 3)
    many, chunks = scores()
    assert len(chunks) > 10 and max(len(c) for c in chunks) <= 2000
    keys = ["kpi", "dimension", "segment"]
    seen = [set(map(tuple, c[keys].drop_duplicates().to_numpy())) for c in chunks]
    assert sum(map(len, seen)) == len(set().union(*seen))   # no series in two chunks
    assert np.array_equal(one.view(np.int64), many.view(np.int64))
