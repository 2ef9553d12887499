"""Oracle: every watched series scored against the simulator's exact null distribution.

Only possible on simulated data, so it lives behind the truth wall: ``baseline_long``
(``evaluation.oracle_baseline``) turns truth/baseline_daily into, per date and series, the
noise-free shock-free expectation and the simulator's own noise (``noise`` column, see
``simulation/noise_model.py``); ``stage_oracle`` (run by ``evaluation.pipeline`` right after
``detect``) scores exactly the series the detectors watched (``analytics.pipeline.detector_input``)
and appends its rows to the detections. Analytics only declares its settings
(``analytics.detectors.oracle_spec``). The oracle is the reference for the best achievable recall
and never votes in the consensus.

Null distributions (moment-matched to the exact mean and variance):

- sessions, orders: negative binomial (Poisson when not overdispersed), mid-p tails;
- revenue, units: gamma;
- aov: the mean of n order values, gamma with variance ``noise / n`` (n: observed orders of the
  slice when watched, else expected);
- conversion_rate: orders given the observed sessions s, negative binomial with mean s·q and
  variance s·q + (s·q)²·cv² (``noise`` = cv²: the day-level conversion noise plus, where the
  truth has it, the slice's cell mix ``conversion_mix_cv2`` — its cells convert at their own
  rates and their sessions move with their own factors; without it the null was up to 1.7× too
  narrow on a country whose channels convert unlike, 2026-12-06).

Order values are skewed beyond a gamma (a few orders with many lines or dear goods), so where
truth has one order's exact value distribution (truth/order_value_null.csv) the revenue and aov
tails of small sums (at most ``N_EXACT`` orders in the window, gamma p below ``P_EXACT``) are
recomputed from it (``compound_null``: the sum of n values; the compound sum over a negative
binomial order count).

Product series (dimension ``product``, segment ``str(product_id)``; truth/product_null.csv, see
``product_baseline``): orders are the overall orders thinned by the product's tau (negative
binomial as above); price (list price per unit sold) has no noise at all — a day whose price
differs from the list price by more than half a cent (prices are written in cents) scores
``MAX_SCORE`` in the direction of the change, any other day 0. Windows add nothing to a null
without noise (every day is already decisive), so a price point is scored on its own day only: a
window ending on a correctly priced day is not flagged by an earlier mispriced one.

Each point is tested over trailing windows of 1 and ``windows`` days (sums of independent days:
slow shifts add up); the smallest one-sided tail probability, Bonferroni-adjusted for the number
of windows, becomes the score on the shared calibrated scale: ``s = Φ⁻¹(1 − p)`` with the sign of
the deviation, so under the null ``P(|s| >= t) = 2(1 − Φ(t))``. Points without noise information
(older truth layouts) fall back to a robust z of the residual.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from analytics import pipeline as ap
from analytics.config import AnalysisConfig
from analytics.context import RunContext
from analytics.detectors import REGISTRY, DetectorInput
from analytics.detectors.base import SERIES_KEYS, robust_scale
from analytics.detectors.count_likelihood import nbinom_terms
from analytics.detectors.oracle_spec import Oracle, OracleConfig
from evaluation.compound_null import P_RELIABLE, compound_tails, scope_atoms
from evaluation.oracle_baseline import (  # the truth's null tables, in the long layout
    PRODUCT_DIM,
    baseline_long,
    product_baseline,
    truth_baseline,
    truth_order_values,
    truth_products,
)
from evaluation.tails import gamma_sf_cdf, norm_isf, poisson_terms  # scipy.stats' floats

COUNT_KPIS = ("sessions", "orders")
SUM_KPIS = ("sessions", "orders", "revenue", "units")
# smallest tail probability scored (Bonferroni-adjusted p values are clipped to it), and the
# largest score it gives (~37): the score of an event impossible under the null
P_FLOOR = 1e-300
MAX_SCORE = float(norm_isf(P_FLOOR))
# a product's price differing from its list price by more than this is a change (written in cents)
PRICE_TOL = 0.005
# revenue / aov points re-tested with the order value's exact distribution: gamma p below this,
# order count in the window at most N_EXACT (above it the gamma is the CLT's answer)
P_EXACT = 0.01
N_EXACT = 500
# rows (whole series) the exact scores are computed for at a time (``_exact_scores``)
CHUNK_ROWS = 1 << 16


def _nb_shape(m: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(overdispersed, n, p) of the negative binomial with mean m and variance v (Poisson where
    v <= m: n, p are placeholders there)."""
    over = v > m * (1 + 1e-9)
    n_nb = np.where(over, m**2 / np.where(over, v - m, 1.0), 1.0)
    p_nb = np.where(over, n_nb / (n_nb + m), 0.5)
    return over, n_nb, p_nb


def _count_tails(
    k: np.ndarray, m: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(X > k), P(X = k), P(X < k)) of a negative binomial with mean m and variance v (Poisson
    when v <= m), each family evaluated on its own rows only. P(X < k) is computed directly, not
    as 1 - P(X >= k): deep in the lower tail the difference underflows to 0 (a z of 7.5 read as
    37, the clip)."""
    over, n_nb, p_nb = _nb_shape(m, v)
    sf, pmf, below = (np.empty(k.shape) for _ in range(3))
    o, q = over, ~over
    if o.any():   # the compiled ufuncs scipy.stats.nbinom calls (count_likelihood's helper)
        pmf[o], sf[o], below[o] = nbinom_terms(k[o], n_nb[o], p_nb[o])
    if q.any():
        sf[q], pmf[q], below[q] = poisson_terms(k[q], m[q])
    return sf, pmf, below


def _p_zero(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """P(X = 0) of the negative binomial (Poisson) with mean m and variance v."""
    over, n_nb, p_nb = _nb_shape(m, v)
    out = np.empty(m.shape)
    out[over] = nbinom_terms(np.zeros(int(over.sum())), n_nb[over], p_nb[over])[0]
    out[~over] = poisson_terms(np.zeros(int((~over).sum())), m[~over])[1]
    return out


def _tails(
    kpi: np.ndarray,
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    n_mean: np.ndarray,
    n_var: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided tail probabilities (P(X >= x), P(X <= x)) under the moment-matched null:
    negative binomial (mid-p) for counts; for compound sums (revenue, units) a point mass at 0 of
    P(no order) (order count mean ``n_mean``, variance ``n_var``) plus a gamma."""
    up = np.full(x.shape, np.nan)
    lo = np.full(x.shape, np.nan)
    ok = np.isfinite(x) & np.isfinite(mean) & np.isfinite(var) & (mean > 0) & (var > 0)
    count = ok & np.isin(kpi, COUNT_KPIS)
    cont = ok & ~count
    if count.any():
        sf, pmf, below = _count_tails(np.round(x[count]), mean[count], var[count])
        up[count] = sf + 0.5 * pmf
        lo[count] = below + 0.5 * pmf
    if cont.any():
        m, v, xc = mean[cont], var[cont], x[cont]
        nm, nv = n_mean[cont], n_var[cont]
        known = np.isfinite(nm) & np.isfinite(nv) & (nm > 0)
        p0 = np.where(known, _p_zero(np.where(known, nm, 1.0), np.where(known, nv, 1.0)), 0.0)
        # moments of the sum given at least one order
        p0 = np.minimum(p0, 0.999999)
        m1 = m / (1 - p0)
        v1 = np.maximum((v + m**2) / (1 - p0) - m1**2, 1e-12 * m1**2)
        g_sf, g_cdf = gamma_sf_cdf(xc, m1**2 / v1, v1 / m1)  # the cdf, not 1 - sf: no underflow
        zero = xc <= 0
        up[cont] = np.where(zero, 1.0, (1 - p0) * g_sf)
        lo[cont] = np.where(zero, p0, p0 + (1 - p0) * g_cdf)
    return up, lo


class _Trailing:
    """Trailing ``w``-row sums per group from one grouped-cumsum [group, position] table."""

    def __init__(self, codes: np.ndarray, pos: np.ndarray) -> None:
        self.codes, self.pos = codes, pos
        self.shape = (int(codes.max()) + 1, int(pos.max()) + 1) if len(codes) else (0, 0)

    def running(self, values: np.ndarray) -> np.ndarray:
        c = np.full(self.shape, np.nan)
        run = pd.Series(values, copy=False).fillna(0.0).groupby(self.codes, sort=False)
        c[self.codes, self.pos] = run.cumsum().to_numpy(float)
        return c

    def window(self, c: np.ndarray, w: int) -> np.ndarray:
        out = np.full(self.shape, np.nan)
        if w <= self.shape[1]:
            out[:, w - 1] = c[:, w - 1]
            with np.errstate(invalid="ignore"):   # inf - inf after an infinite value: NaN
                out[:, w:] = c[:, w:] - c[:, :-w]
        return out[self.codes, self.pos]


def _exact_order_values(
    up: np.ndarray,
    lo: np.ndarray,
    ok: np.ndarray,
    kpi: np.ndarray,
    scope: np.ndarray,
    atoms: dict[str, tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    n: np.ndarray,
    n_mean: np.ndarray,
    n_var: np.ndarray,
) -> None:
    """Replace (in place) the gamma tails of revenue and aov sums with the exact ones from the
    order value's distribution (``compound_null``) where it matters: the gamma's p below
    ``P_EXACT`` (the order count small enough, ``N_EXACT``, that a gamma is not already the
    CLT's answer)."""
    cand = np.flatnonzero(ok & (np.fmin(up, lo) < P_EXACT))   # few: the tails worth it
    is_aov = kpi[cand] == "aov"
    count = np.where(is_aov, n[cand], n_mean[cand])
    keep = np.isfinite(x[cand]) & (count <= N_EXACT)
    cand, is_aov = cand[keep], is_aov[keep]
    sc_of = scope[cand]
    for sc in np.unique(sc_of):
        vals, probs = atoms[sc]
        for aov in (True, False):
            r = cand[(sc_of == sc) & (is_aov == aov)]
            if not r.size:
                continue
            if aov:
                u, lw = compound_tails(vals, probs, x[r], n=np.rint(n[r]))
            else:
                u, lw = compound_tails(vals, probs, x[r], m=n_mean[r], v=n_var[r])
            for new, old in ((u, up), (lw, lo)):
                good = np.isfinite(new)
                keep = np.where(new >= P_RELIABLE, new, np.fmin(old[r], P_RELIABLE))
                old[r] = np.where(good, keep, old[r])


class ExactOracle(Oracle):
    """The oracle's implementation (settings: ``OracleConfig``, declared in analytics).
    ``order_atoms``: {scope: (values, probabilities)} of one order's value
    (truth/order_value_null; ``compound_null.scope_atoms``), set by ``stage_oracle``; without it
    revenue and aov keep the gamma by moments."""

    order_atoms: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        base = inp.baseline
        assert base is not None  # checked in detect()
        cols = ["date", *SERIES_KEYS, "value"] + (["noise"] if "noise" in base.columns else [])
        b = base[cols].rename(columns={"value": "expected"})
        if "noise" not in b.columns:
            b["noise"] = np.nan
        m = series[["date", *SERIES_KEYS, "value"]].merge(
            b, on=["date", *SERIES_KEYS], how="left", validate="one_to_one"
        )
        m.index = series.index
        # helpers: orders (for aov) and sessions (for conversion) of the same date and slice,
        # observed when watched, else expected
        slice_keys = ["date", "dimension", "segment"]
        idx = pd.MultiIndex.from_frame(m[slice_keys])
        for kpi, col in (("orders", "n_orders"), ("sessions", "n_sessions")):
            obs = series[series["kpi"] == kpi].set_index(slice_keys)["value"]
            exp = base[base["kpi"] == kpi].set_index(slice_keys)["value"]
            both = obs.combine_first(exp) if len(obs) else exp
            m[col] = both.reindex(idx).to_numpy(float) if len(both) else np.nan
        # null mean and variance of the slice's order count (P(no order) for revenue and units)
        bo = base[base["kpi"] == "orders"].set_index(slice_keys)
        m["e_orders"] = bo["value"].reindex(idx).to_numpy(float) if len(bo) else np.nan
        m["v_orders"] = (
            bo["noise"].reindex(idx).to_numpy(float) if len(bo) and "noise" in bo else np.nan
        )
        if getattr(self.config, "product_null", "unconditional") == "category":
            self._given_category(m, base, inp)
        del idx, obs, exp, both, bo, b  # their memory (index engines) is not held by the scores
        score = self._exact_scores(m)
        # fallback: robust z of the residual where the truth has no noise model (each series'
        # scale over its whole length; only the series that need it: usually none)
        missing = ~np.isfinite(score)
        if missing.any():
            keys = m[list(SERIES_KEYS)]
            need = pd.MultiIndex.from_frame(keys).isin(
                pd.MultiIndex.from_frame(keys[missing]).unique())
            sub = m[need]
            resid = sub["value"].astype(float) - sub["expected"].astype(float)
            scale = resid.groupby([sub[k] for k in SERIES_KEYS], sort=False).transform(
                robust_scale)
            robust = np.full(len(m), np.nan)
            robust[need] = (resid / scale.where(scale > 0)).to_numpy(float)
            score = np.where(missing, robust, score)
        return pd.DataFrame(
            {
                "score": pd.Series(score, index=series.index).replace([np.inf, -np.inf], np.nan),
                "expected": m["expected"],
            },
            index=series.index,
        )

    @staticmethod
    def _given_category(m: pd.DataFrame, base: pd.DataFrame, inp: DetectorInput) -> None:
        """Product orders' null given the category's observed orders ``N`` that day (the
        exposure): binomial with the product's exact share of the category's orders, ``q`` =
        its expected orders / the category's; mean ``N q``, variance ``N q (1 − q)`` (in place;
        rows without exposure keep the unconditional null)."""
        ex = inp.exposure
        rows = (m["kpi"] == "orders") & (m["dimension"] == PRODUCT_DIM)
        if ex is None or not len(ex) or not rows.any():
            return
        ex = ex[ex["dimension"] == PRODUCT_DIM].set_index(["date", "segment"])
        key = pd.MultiIndex.from_frame(m.loc[rows, ["date", "segment"]])
        n = ex["parent_orders"].reindex(key).to_numpy(float)
        parent = ex["parent"].reindex(key).to_numpy(object)
        cat = base[(base["kpi"] == "orders") & (base["dimension"] == "category")]
        cat = cat.set_index(["date", "segment"])["value"]
        c_exp = cat.reindex(pd.MultiIndex.from_arrays(
            [m.loc[rows, "date"].to_numpy(), parent])).to_numpy(float)
        q = np.clip(m.loc[rows, "expected"].to_numpy(float) / c_exp, 0.0, 1.0)
        ok = np.isfinite(n) & np.isfinite(q)
        m.loc[rows, "expected"] = np.where(ok, n * q, m.loc[rows, "expected"])
        m.loc[rows, "noise"] = np.where(ok, n * q * (1 - q), m.loc[rows, "noise"])

    def _exact_scores(self, m: pd.DataFrame) -> np.ndarray:
        """Calibrated signed scores from the exact null over 1-day and trailing windows, in
        chunks of whole series of about ``CHUNK_ROWS`` rows: each score reads its own series
        only, so the working arrays (~40 per row) are a chunk's, not the table's (the same
        floats: every step is per point or per series)."""
        group = (
            m["kpi"].astype(str)
            + "\x1f"
            + m["dimension"].astype(str)
            + "\x1f"
            + m["segment"].astype(str)
        )
        codes = pd.factorize(group, sort=False)[0]          # once: windows group by integers
        del group
        order = np.argsort(codes, kind="stable")   # each series' rows, in order
        ends = np.cumsum(np.bincount(codes))       # series are numbered as they first appear
        out = np.empty(len(m))
        start = 0  # the chunk's first series
        while start < len(ends):
            first = ends[start - 1] if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, first + CHUNK_ROWS, side="right")))
            rows = order[first:ends[stop - 1]]
            out[rows] = self._chunk_scores(m.iloc[rows], codes[rows] - start)
            start = stop
        return out

    def _chunk_scores(self, m: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
        """``_exact_scores`` of the whole series in ``m`` (``codes``: each row's series, 0..)."""
        kpi = _labels(m["kpi"])
        pos = pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy()
        trailing = _Trailing(codes, pos)
        x = m["value"].astype(float)
        e = m["expected"].astype(float)
        noise = m["noise"].astype(float)
        n = m["n_orders"].astype(float)
        s = m["n_sessions"].astype(float)
        is_sum = np.isin(kpi, SUM_KPIS)
        is_aov = kpi == "aov"
        is_conv = kpi == "conversion_rate"
        # per-day statistic, its null mean and variance, in additive form so windows are sums
        stat = np.where(is_sum, x, np.where(is_aov, x * n, np.where(is_conv, x * s, np.nan)))
        mean = np.where(is_sum, e, np.where(is_aov, e * n, np.where(is_conv, e * s, np.nan)))
        var = np.where(
            is_sum,
            noise,
            np.where(is_aov, noise * n, np.where(is_conv, e * s + (e * s) ** 2 * noise, np.nan)),
        )
        # aov sums become revenue-like sums (gamma); conversion sums are order counts (NB)
        family = np.where(is_conv, "orders", np.where(is_aov, "revenue", kpi)).astype(object)
        # order count of the slice (P(no order) for revenue and units; none for aov/conversion)
        n_mean = np.where(np.isin(kpi, ("revenue", "units")), m["e_orders"].to_numpy(float), np.nan)
        n_var = np.where(np.isin(kpi, ("revenue", "units")), m["v_orders"].to_numpy(float), np.nan)
        # order values: the exact null of small sums (revenue, aov) where truth has it
        atoms = self.order_atoms or {}
        dim = _labels(m["dimension"])
        scope = np.where(dim == "category", m["segment"].astype(str).to_numpy(object),
                         np.where(dim == PRODUCT_DIM, "", "all"))
        exact_ok = np.isin(kpi, ("revenue", "aov")) & np.isin(scope, list(atoms))
        n_count = np.where(is_aov, n, np.nan)
        windows = [1, *sorted({w for w in self.config.windows if w > 1})]
        best_p = np.full(len(m), np.inf)
        running: list[np.ndarray] | None = None
        best_sign = np.zeros(len(m))
        for w in windows:
            if w == 1:
                sx, sm, sv, snm, snv, sn = stat, mean, var, n_mean, n_var, n_count
            else:
                running = running or [trailing.running(a)   # once, for every window
                                      for a in (stat, mean, var, n_mean, n_var, n_count)]
                sx, sm, sv, snm, snv, sn = (trailing.window(c, w) for c in running)
            up, lo = _tails(family, sx, sm, sv, snm, snv)
            if exact_ok.any():
                _exact_order_values(up, lo, exact_ok, kpi, scope, atoms, sx, sn, snm, snv)
            p = np.fmin(up, lo)
            better = np.isfinite(p) & (p < best_p)
            best_p = np.where(better, p, best_p)
            best_sign = np.where(better, np.where(up <= lo, 1.0, -1.0), best_sign)
        p_adj = np.clip(best_p * len(windows), P_FLOOR, 0.5)
        z = norm_isf(p_adj)
        out = np.where(np.isfinite(best_p), best_sign * z, np.nan)
        # price: the null has no noise (the list price): any change is impossible under it
        dev = (x - e).to_numpy(float)
        is_price = (kpi == "price") & np.isfinite(dev)
        if is_price.any():
            jump = np.where(dev > PRICE_TOL, MAX_SCORE, np.where(dev < -PRICE_TOL, -MAX_SCORE, 0.0))
            out = np.where(is_price, jump, out)
        return out


def _labels(col: pd.Series) -> np.ndarray:
    """``col.to_numpy(object)`` holding one Python string per distinct value (memory: a few
    labels repeated, not a new string object per row; missing values stay NaN)."""
    codes, uniques = pd.factorize(col)
    return np.asarray([*uniques, np.nan], dtype=object)[codes]


# the oracle's implementation per declared type (analytics declares the settings only)
IMPLEMENTATIONS: dict[str, type[Oracle]] = {"oracle": ExactOracle}

def stage_oracle(ctx: RunContext) -> None:
    """Run every enabled detector that needs truth (the oracle) on exactly the series the
    detectors watched, appending its rows to ``ctx.detections`` and its status to
    ``ctx.detector_status`` as ``stage_detect`` does for the others."""
    cfg: AnalysisConfig = ctx.config
    names = [n for n, d in cfg.detectors.items() if d.enabled and REGISTRY[d.type].needs_truth]
    if not names:
        return
    inp: DetectorInput | None = None
    if cfg.scoring.include_oracle:
        # the series stage_detect watched (a copy: the baseline is the oracle's alone)
        inp = replace(ctx.watched) if ctx.watched is not None else ap.detector_input(ctx)
        watched = inp.series.loc[inp.series["dimension"] == PRODUCT_DIM, "segment"]
        dims = set(inp.series["dimension"].unique())
        inp.baseline = baseline_long(
            truth_baseline(ctx), ap.analysed_kpis(ctx)[0], truth_products(ctx),
            sorted(watched.astype(str).unique()),  # unique() first: no per-row Python loop
            # the watched dimensions' rows only (+ the categories: a product's null given them)
            dims | {"category"} if PRODUCT_DIM in dims else dims,
        )
    frames = []
    for name in names:
        dcfg = cfg.detectors[name]
        impl = IMPLEMENTATIONS.get(dcfg.type)
        if inp is None or inp.baseline is None or impl is None:
            ctx.detector_status[name] = ap.skipped_status("no truth/baseline_daily")
            continue
        det = impl(dcfg, name=name)
        if isinstance(det, ExactOracle):
            values = truth_order_values(ctx)
            listed = (ctx.data.manifest or {}).get("files") or {}
            if values is None and "truth/order_value_null.csv" in listed:   # --no-verify: silent
                logging.getLogger("shocklab.oracle").warning(
                    "truth/order_value_null.csv is missing (manifest.json lists it): the oracle "
                    "reads the revenue and AOV tails of small sums by gamma moments (a weaker "
                    "bound)")
            det.order_atoms = scope_atoms(values)
        out = ap.run_detector(ctx, det, inp)
        if out is not None:
            frames.append(out)
    if frames:
        have = ctx.detections is not None and len(ctx.detections)
        ctx.detections = pd.concat([ctx.detections, *frames] if have else frames,
                                   ignore_index=True)


__all__ = ["ExactOracle", "IMPLEMENTATIONS", "MAX_SCORE", "OracleConfig", "baseline_long",
           "product_baseline", "stage_oracle", "truth_baseline", "truth_order_values",
           "truth_products"]
