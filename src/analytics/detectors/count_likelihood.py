"""Count likelihood: each day's value judged by the tail of a count-aware null whose noise
parameters are learned from the store's own past residuals, pooled across its series.

The simulator (and a real store) makes a day's count from a common day factor shared by every
slice, a cell factor, and Poisson noise given the factors; AOV is a mean of ``n`` order values
(variance ∝ 1/n) and conversion is orders given sessions. So the null of every KPI has the form

    Var[X] = μ² (a · u + φ)

with ``u`` the inverse of the number of independent units behind the value (counts: 1/μ;
conversion: 1/(q · sessions), in orders; AOV: 1/orders that day; revenue: 1/expected orders;
other KPIs: 0) and ``φ`` the squared coefficient of variation of the shared factors (day factor,
cell factor). ``a`` is 1 for Poisson counts and the per-order value variance for AOV and revenue.

- **expected value** ``μ`` (``expected``; ``baseline.py``): a level (trailing median over
  ``window`` days of the weekday-adjusted values, planned calendar days left out) × the
  series' weekday factor (median of each weekday over ``weekday_weeks`` weeks;
  ``slots.slot_factor``) by default; shipped since the sixth session (config, README
  "Random worlds"): a weekday profile pooled across the KPI's series (empirical Bayes) and a
  level that follows the KPI's slope pooled across its series (``pooled_trend``), and since the
  sixteenth a catch-up: after a lasting step the level is the last 10 days' median and no slope
  is read from the step for 56 days (``catch_up``, ``catch_up_hold``; ``baseline.py``); options
  not shipped: a per-series trend-following level, a slice's share of its parent;
- **noise** ``(a, φ)``: fitted every ``fit_every_days`` on the 1-day residuals of the previous
  ``fit_window`` days (causal), by iteratively reweighted least squares on ``(r/μ)²``: ``a`` = 1
  for counts and conversion (Poisson / binomial), else pooled over all series of the KPI, fitted
  on the variation of ``u`` within each dimension; ``φ`` per series, shrunk towards its
  dimension's pooled value with ``phi_prior_days`` pseudo-days (a channel is overdispersed by its
  cells, the whole store only by the day factor; large series pin ``φ``, small ones are mostly
  the Poisson part). Residuals beyond 4.5 σ are left out (shocks; option ``fit_trim``: another
  cut, the fit corrected for it). Which residuals (``fit_residuals``): against the trailing level
  the scores use (the default) or, shipped since the fifty-second session, against the median of
  the ``centred_days`` (14) days either side of each day (``centred_residuals``; a day enters the
  fit that many days later): a lasting step the trailing level takes weeks to follow left those
  weeks' residuals in the fit and widened the series' null for half a year;
- **estimated expected value**: the residual variance is ``(1 + c_L + c_W)`` × the noise, with
  ``c_L`` the level's error variance per unit of the noise (median of ``m`` days: π/2 / m) and
  ``c_W`` the weekday factor's (``baseline.py``: for a pooled slice mostly its parent's); the fit
  removes that factor and a window's variance adds it back, the level's part in full (it is
  shared by all days of a window);
- **score**: the observation (1 day, or the sum over the last ``k`` days of ``windows`` against
  the level before them) read in the tail of a negative binomial matched to mean and variance for
  counts and conversion (orders given the sessions; mid-p), a gamma for AOV (sum of order values)
  and revenue, a normal for other KPIs; the signed normal score of the one-sided tail
  probability is the raw score. Each window is calibrated on its own by the shared calibrator and
  combined by Bonferroni (``base.combine_windows``).

Daily store data only: on sub-daily input it gives no scores (every score 0, no flag) and says
so in its run status, and ``--kpis`` runs switch it off (``store_only``; ``external_profile``).
Vectorized over series ([period × series] matrices; Python loops only over refit blocks, KPIs and
windows).

Measured on TRAIN worlds and not kept (fifth session, docs/history/detection.md): a second pass
leaving days with a first-pass |score| ≥ 3.5 out of the levels, a trend-following level, and
each slice judged given the day ratio of the rest of the store (a learned day factor): none
raised F1 or the recall ratio on visibility or percent worlds.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field, model_validator
from scipy.special import gammainc, gammaincc, gammaln, ndtr, ndtri, pdtr, pdtrc, xlogy

from ..drivers import nanmedian0
from .base import (
    Detector,
    DetectorConfig,
    DetectorInput,
    calendar_mask,
    check_min_periods,
    register,
)
from .baseline import (
    ExpectedConfig,
    Level,
    catch_up_level,
    median_level,
    parents,
    pooled_profile,
    pooled_trend_level,
    share_level,
    trend_level,
)
from .calibrate import COUNT_KPIS, CalibrationConfig, Wide, Window, blocks, shift
from .rolling_zscore import slice_counts, slice_daily
from .slots import slot_factor

HALF_PI = np.pi / 2  # variance of a sample median / variance of a mean, normal data
CHUNK_CELLS = 4_000_000  # centred_residuals: window cells per column chunk (~32 MB of floats)
TRIM = 20.0  # residuals with (r/μ)² beyond TRIM × the model (|z| > 4.5) are not fitted


class CountLikelihoodConfig(DetectorConfig):
    type: Literal["count_likelihood"] = "count_likelihood"
    window: int = Field(28, ge=7, le=10_000, description="trailing days of the robust level")
    min_periods: int = Field(
        14, ge=3, le=10_000, description="no score before this many days (at most `window`)"
    )
    weekday_weeks: int = Field(
        12, ge=2, le=520, description="expected.weekday own_median: weeks behind the factor"
    )
    weekday_stat: Literal["mean", "median"] = "median"
    expected: ExpectedConfig = Field(
        default_factory=ExpectedConfig,
        description="the expected value: weekday profile, level, slices' share (baseline.py)",
    )
    windows: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=lambda: [3, 7],
        description="more windows besides 1 day: the sum of the last k days against the level "
        "before them, each calibrated on its own and Bonferroni-combined",
    )
    fit_window: int = Field(
        182, ge=28, le=10_000, description="days of past residuals the noise is fitted on"
    )
    fit_every_days: int = Field(7, ge=1, le=365, description="the noise is refitted this often")
    min_fit: int = Field(
        28, ge=7, le=10_000,
        description="past residual days (of the KPI's largest series) before any score",
    )
    phi_by: Literal["kpi", "dimension", "series"] = Field(
        "series",
        description="overdispersion φ pooled over the KPI's series | per dimension | per series "
        "shrunk towards its dimension's (phi_prior_days)",
    )
    fit_trim: float | None = Field(
        None, ge=2.0, le=10.0,
        description="sds beyond which a residual leaves the noise fit, the fit divided by the "
        "normal's E[z^2 | |z| < fit_trim] so it stays unbiased (null = sqrt(TRIM), uncorrected)",
    )
    fit_residuals: Literal["trailing", "centred"] = Field(
        "trailing",
        description="the residuals the noise is fitted on: against the trailing level the "
        "scores use | against the median of the `centred_days` days either side of each day "
        "(the day left out; a day enters the fit once those later days are past): a lasting "
        "step the trailing level follows slowly no longer widens the fitted noise",
    )
    centred_days: int = Field(14, ge=3, le=182, description="fit_residuals centred: days a side")
    phi_prior_days: float = Field(
        28.0, ge=0, le=10_000, description="pseudo-days of the dimension's φ in a series' φ"
    )
    calendar: Literal["ignore", "exclude"] = Field(
        "exclude", description="planned calendar days: ignore | leave out of levels, fits, sums"
    )
    calibration: CalibrationConfig = Field(
        default_factory=lambda: CalibrationConfig(tail_df=None, tail_gain=0.95, scale_cap=3.5),
        description="normal tail (the scores are normal by construction) x a gain fitted on "
        "shock-free TRAIN worlds n1-n5: the 1-day |score| quantile at the per-window flag level "
        "(3.85e-4) is 3.89 vs the normal's 3.55; scale_cap 3.5: a past shock's days stay out of "
        "the series' scale (tenth session, docs/history/detection.md)",
    )
    window_calibration: dict[Window, CalibrationConfig] = Field(
        default_factory=lambda: {
            3: CalibrationConfig(tail_df=None, tail_gain=0.97, scale_cap=3.5),
            7: CalibrationConfig(tail_df=None, tail_gain=0.975, scale_cap=3.5),
        },
        description="calibration of a window's scores (default: calibration); fitted likewise",
    )

    @model_validator(mode="after")
    def _min_periods_within_window(self) -> CountLikelihoodConfig:
        check_min_periods(self)
        return self


def _family(kpi: str, has_orders: bool, has_sessions: bool) -> str:
    if kpi in COUNT_KPIS:
        return "count"
    if kpi == "conversion_rate" and has_sessions:
        return "conv"
    if kpi == "aov" and has_orders:
        return "aov"
    if kpi == "revenue" and has_orders:
        return "rev"
    return "other"


def fit_noise(
    y: np.ndarray, u: np.ndarray, dim_of: np.ndarray, cfg: CountLikelihoodConfig,
    a_known: float | None = None,
) -> tuple[float, np.ndarray]:
    """(a, φ per column) of ``y ≈ a·u + φ`` on a [rows, series] block of one KPI (NaN = unused):
    iteratively reweighted least squares (weights 1 / model², residuals beyond TRIM × model
    left out). ``a``: ``a_known`` (counts: Poisson, 1), else fitted on the variation of ``u``
    within each dimension (a φ per dimension, so a dimension's overdispersion is not read as
    ``a``); ``φ`` pooled over the KPI, per dimension or per series (``cfg.phi_by``)."""
    ok0 = np.isfinite(y) & np.isfinite(u)
    if not ok0.any():
        return np.nan, np.full(y.shape[1], np.nan)
    uu = np.where(ok0, u, 0.0)
    y0 = np.where(ok0, y, 0.0)
    trim, yy = TRIM, y0
    if cfg.fit_trim is not None:  # divided by E[z^2 | |z| < c] of a normal: the cut's bias
        c = cfg.fit_trim
        trim = c * c
        yy = y0 / (1 - 2 * c * np.exp(-c * c / 2) / np.sqrt(2 * np.pi) / (1 - 2 * ndtr(-c)))
    a = 1.0 if a_known is None else a_known
    phi = np.full(y.shape[1], max(float(np.median(y[ok0])) * 0.5, 1e-6))
    groups = [dim_of == d for d in np.unique(dim_of)]
    for _ in range(4):
        model = a * uu + phi[None, :]
        ok = ok0 & (y0 <= trim * model)
        w = np.where(ok, 1.0 / np.maximum(model, 1e-12) ** 2, 0.0)
        if a_known is None:  # within-dimension weighted regression of y on u
            sxy = sxx = 0.0
            for c in groups:
                wc, uc, yc = w[:, c], uu[:, c], yy[:, c]
                sw = wc.sum()
                if sw <= 0:
                    continue
                du = uc - (wc * uc).sum() / sw
                sxy += (wc * du * (yc - (wc * yc).sum() / sw)).sum()
                sxx += (wc * du * du).sum()
            if sxx > 0:
                a = float(np.clip(sxy / sxx, 0.0, 100.0))
        e = np.where(ok, yy - a * uu, 0.0)
        num, den = (w * e).sum(axis=0), w.sum(axis=0)
        pooled = float(num.sum() / max(den.sum(), 1e-300))
        if cfg.phi_by == "kpi":
            phi = np.full(y.shape[1], pooled)
        else:
            phi_d = np.full(y.shape[1], pooled)
            for c in groups:
                if den[c].sum() > 0:
                    phi_d[c] = num[c].sum() / den[c].sum()
            if cfg.phi_by == "dimension":
                phi = phi_d
            else:
                n = ok.sum(axis=0)
                k = cfg.phi_prior_days * den / np.maximum(n, 1)  # pseudo-days at mean weight
                phi = np.where(den + k > 0, (num + k * phi_d) / np.maximum(den + k, 1e-300), phi_d)
        phi = np.maximum(phi, 1e-7)
    return a, phi


def tail_scores(fam: np.ndarray, x: np.ndarray, m: np.ndarray, v: np.ndarray,
                n_orders: np.ndarray | None = None) -> np.ndarray:
    """Signed normal score of the one-sided tail probability of ``x`` under the family's null
    with mean ``m`` and variance ``v`` (columns of one family each; NaN where undefined);
    ``n_orders``: expected orders behind a revenue value (its point mass at 0, Poisson)."""
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x) & np.isfinite(m) & np.isfinite(v) & (m > 0) & (v > 0)
    cnt = ok & np.isin(fam, ["count", "conv"])[None, :]
    gam = ok & np.isin(fam, ["aov", "rev"])[None, :]
    nrm = ok & ~cnt & ~gam
    with np.errstate(all="ignore"):
        if cnt.any():
            k, mm, vv = np.round(np.maximum(x[cnt], 0)), m[cnt], v[cnt]
            over = vv > mm * (1 + 1e-9)
            r = np.where(over, mm**2 / np.where(over, vv - mm, 1.0), 1.0)
            p = np.where(over, r / (r + mm), 0.5)
            nb_pmf, nb_sf, nb_cdf1 = nbinom_terms(k, r, p)
            pmf = np.where(over, nb_pmf, np.exp(xlogy(k, mm) - gammaln(k + 1) - mm))
            up = np.where(over, nb_sf, pdtrc(k, mm)) + 0.5 * pmf
            lo = np.where(over, nb_cdf1, np.where(k >= 1, pdtr(k - 1, mm), 0.0)) + 0.5 * pmf
            out[cnt] = _signed(up, lo)
        if gam.any():  # a point mass P(no order) at 0 (revenue), a gamma given any order
            xx, mm, vv = np.maximum(x[gam], 0), m[gam], v[gam]
            nn = n_orders[gam] if n_orders is not None else np.full(xx.shape, np.nan)
            p0 = np.where(np.isfinite(nn) & (nn > 0), np.exp(-np.where(nn > 0, nn, 0.0)), 0.0)
            p0 = np.minimum(p0, 0.999999)
            m1 = mm / (1 - p0)
            v1 = np.maximum((vv + mm**2) / (1 - p0) - m1**2, 1e-12 * m1**2)
            shape, scale = m1**2 / v1, v1 / m1
            zero = xx <= 0
            y = xx / scale   # the gamma's tails by the regularized incomplete gamma functions
            up = np.where(zero, 1.0, (1 - p0) * gammaincc(shape, y))
            lo = np.where(zero, p0, p0 + (1 - p0) * gammainc(shape, y))
            out[gam] = _signed(up, lo)
        if nrm.any():
            out[nrm] = (x[nrm] - m[nrm]) / np.sqrt(v[nrm])
    return out


def expected_parts(clean: np.ndarray, wide: Wide, cfg: CountLikelihoodConfig
                   ) -> tuple[np.ndarray, np.ndarray, Level]:
    """(weekday factor, its error variance factor c_W, level) per [period, series]
    (``cfg.expected``; baseline.py)."""
    ex = cfg.expected
    par = parents(wide.keys)
    dims = np.array([d for _, d, _ in wide.keys])
    if ex.weekday == "pooled":
        factor, c_w, rho = pooled_profile(clean, par, dims, ex)
    else:
        factor = slot_factor(clean, 1, cfg.weekday_weeks, cfg.weekday_stat)
        c_w, rho = np.full(clean.shape, HALF_PI / cfg.weekday_weeks), np.zeros(clean.shape)
    adj = clean / factor
    if ex.level == "pooled_trend":
        kpis = np.array([k for k, _, _ in wide.keys])
        level = pooled_trend_level(adj, cfg.window, cfg.min_periods, ex, kpis, dims)
    elif ex.level == "trend":
        level = trend_level(adj, cfg.window, cfg.min_periods, ex)
    else:
        level = median_level(adj, cfg.window, cfg.min_periods)
    if ex.catch_up is not None:
        level = catch_up_level(adj, level, ex.catch_up, ex.catch_up_z, ex.catch_up_hold)
    return factor, c_w, share_level(adj, level, par, rho, ex)


def centred_residuals(clean: np.ndarray, factor: np.ndarray, mult: np.ndarray, c_w: np.ndarray,
                      fam: np.ndarray, u1: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, u) of the noise fit against a hindsight level: each day's weekday-adjusted value
    against the median of the ``h`` days either side of it (the day left out, at least ``h`` of
    them known), so a lasting step's days are not residuals of a level still catching up. Row
    ``d`` needs rows up to ``d + h``: the fit reads it only ``h`` rows later (``_fit``'s lag)."""
    adj = clean / factor
    t = len(adj)
    level = np.full(adj.shape, np.nan)
    step = max(1, CHUNK_CELLS // max(t * 2 * h, 1))  # series at a time: bounded memory
    for c0 in range(0, adj.shape[1] if t > 2 * h else 0, step):
        win = sliding_window_view(adj[:, c0:c0 + step], 2 * h + 1, axis=0)  # [t-2h, s, 2h+1]
        stack = np.moveaxis(np.concatenate([win[..., :h], win[..., h + 1:]], axis=-1), -1, 0)
        enough = np.isfinite(stack).sum(axis=0) >= h
        level[h:t - h, c0:c0 + step] = np.where(enough, nanmedian0(stack), np.nan)
    e = level * factor * mult
    kappa = 1.0 + HALF_PI / (2 * h) + c_w
    with np.errstate(all="ignore"):
        y = ((clean * mult - e) / e) ** 2 / kappa
    y = np.where(np.isfinite(y) & (e > 0), y, np.nan)
    cnt = np.isin(fam, ["count", "conv"])[None, :]
    u = np.where(cnt, 1.0 / np.where(e > 0, e, np.nan), u1)
    return y, np.where(np.isfinite(y), u, np.nan)


def nbinom_terms(k: np.ndarray, r: np.ndarray, p: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Negative binomial pmf(k), sf(k) and cdf(k − 1) for integer k ≥ 0, r > 0, 0 < p < 1: the
    compiled ufuncs ``scipy.stats.nbinom`` itself calls (the same floats), without importing
    ``scipy.stats`` (~0.5 s on every analysis and sweep worker; issue 11). A scipy without them
    falls back to ``scipy.stats``."""
    try:
        from scipy.special._ufuncs import _nbinom_cdf, _nbinom_pmf, _nbinom_sf
    except ImportError:  # pragma: no cover - other scipy layouts
        from scipy import stats

        return (stats.nbinom.pmf(k, r, p), stats.nbinom.sf(k, r, p),
                stats.nbinom.cdf(k - 1, r, p))
    return (_nbinom_pmf(k, r, p), _nbinom_sf(k, r, p),
            np.where(k >= 1, _nbinom_cdf(k - 1, r, p), 0.0))


def _signed(up: np.ndarray, lo: np.ndarray) -> np.ndarray:
    p = np.clip(np.fmin(up, lo), 1e-300, 0.5)
    return np.where(up < lo, 1.0, -1.0) * -ndtri(p)


@register
class CountLikelihood(Detector):
    type_name = "count_likelihood"
    config_class = CountLikelihoodConfig
    store_only = True  # --kpis input: switched off by external_profile (NAB stays as it was)

    def calibration_for(self, column: str) -> CalibrationConfig:
        cfg: CountLikelihoodConfig = self.config  # type: ignore[assignment]
        label = column.partition("@")[2]
        return cfg.window_calibration.get(int(label), cfg.calibration) if label else cfg.calibration

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cfg: CountLikelihoodConfig = self.config  # type: ignore[assignment]
        wide = self.wide(series)
        ks = [1, *sorted({k for k in cfg.windows if k > 1})]
        labels = [f"score@{k}" for k in ks[1:]]
        self.warnings_ = []
        if inp.periods_per_day != 1:  # daily store data only
            self.warnings_.append("count_likelihood scores daily data only: no scores here")
            nan = np.full(len(series), np.nan)
            return pd.DataFrame({"score": nan, "expected": nan, **{c: nan for c in labels}},
                                index=series.index)
        value = wide.to(series["value"].to_numpy(dtype=float))
        planned = (wide.to(calendar_mask(series, inp.calendar).astype(float)) == 1
                   if cfg.calendar == "exclude" else np.zeros(value.shape, bool))
        clean = np.where(planned, np.nan, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            own, mu1 = self._scores(wide, clean, inp, cfg, ks)
        out = pd.DataFrame({"score": wide.back(own[1]), "expected": wide.back(mu1)},
                           index=series.index)
        for k in ks[1:]:
            out[f"score@{k}"] = wide.back(own[k])
        return out

    def _scores(self, wide: Wide, clean: np.ndarray, inp: DetectorInput,
                cfg: CountLikelihoodConfig, ks: list[int]) -> tuple[dict, np.ndarray]:
        """Raw scores per window and the 1-day expected value."""
        kpis = np.array([k for k, _, _ in wide.keys])
        dims = np.array([d for _, d, _ in wide.keys])
        obs_orders = slice_daily(inp, wide, "orders")
        obs_sessions = slice_daily(inp, wide, "sessions")
        exp_orders, _ = slice_counts(inp, wide, cfg.window)
        fam = np.array([_family(k, obs_orders is not None, obs_sessions is not None)
                        for k in kpis])
        factor, c_w, level = expected_parts(clean, wide, cfg)
        # per-day multiplier (statistic = value x mult: orders for conversion, revenue for AOV)
        mult = np.ones_like(clean)
        if obs_sessions is not None:
            mult[:, fam == "conv"] = obs_sessions[:, fam == "conv"]
        if obs_orders is not None:
            mult[:, fam == "aov"] = obs_orders[:, fam == "aov"]
        mult = np.where(mult > 0, mult, np.nan)

        def inv_units(m: np.ndarray, lag: int) -> np.ndarray:
            """u of each day: 1 / the independent units behind the value (see module doc)."""
            u = np.zeros_like(m)
            c = np.isin(fam, ["count", "conv"])
            u[:, c] = 1.0 / np.maximum(m[:, c], 1e-9)
            if obs_orders is not None:
                a = fam == "aov"
                u[:, a] = 1.0 / np.maximum(shift(obs_orders[:, a], lag), 1.0)
                r = fam == "rev"
                u[:, r] = 1.0 / np.maximum(shift(exp_orders[:, r], lag) * shift(factor[:, r], lag),
                                           1.0)
            return u

        stat = clean * mult

        def window_sums() -> dict:
            sums = {}
            for k in ks:  # the sum of the last k days against the level before them
                base, slope = shift(level.base, k), shift(level.slope, k)
                cl = shift(level.c_at(k), k)
                acc = {n: np.zeros_like(clean) for n in ("x", "e", "u2", "sq", "cnt", "n")}
                for j in range(k):  # j days before the last: h0 + k - 1 - j after the level
                    g = shift(factor * mult, j) if j else factor * mult
                    xs = shift(stat, j) if j else stat
                    lvl = base + slope * (level.h0 + k - 1 - j)
                    ok = np.isfinite(g) & np.isfinite(xs) & np.isfinite(lvl)
                    mj = np.where(ok, lvl * g, 0.0)
                    uj = np.where(ok, inv_units(np.where(ok, mj, np.nan), j), 0.0)
                    acc["x"] += np.where(ok, xs, 0.0)
                    acc["e"] += mj
                    acc["u2"] += uj * mj**2
                    acc["sq"] += mj**2
                    acc["cnt"] += ok
                    acc["n"] += np.where(ok & (fam == "rev")[None, :],
                                         1.0 / np.maximum(uj, 1e-12), 0.0)
                bad = (acc["cnt"] < (k + 1) // 2) | (acc["e"] <= 0)
                if k == 1:
                    bad |= ~np.isfinite(stat)
                sums[k] = (acc, cl, bad)
            return sums

        def one_day(sums: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            kappa = 1.0 + sums[1][1] + c_w  # residual variance / noise variance (level estimated)
            e1 = sums[1][0]["e"]
            with np.errstate(all="ignore"):
                y = np.where(sums[1][2], np.nan, ((sums[1][0]["x"] - e1) / e1) ** 2 / kappa)
            u1 = np.where(sums[1][2], np.nan, sums[1][0]["u2"] / np.maximum(e1, 1e-300) ** 2)
            return kappa, y, u1

        sums = window_sums()
        _, y, u1 = one_day(sums)
        lag = 0
        if cfg.fit_residuals == "centred":
            y, u1 = centred_residuals(clean, factor, mult, c_w, fam, u1, cfg.centred_days)
            lag = cfg.centred_days
        a_t, phi_t = self._fit(y, u1, kpis, dims, fam, cfg, lag=lag)
        own = {k: self._tail(sums[k], a_t, phi_t, c_w, fam) for k in ks}
        e1 = sums[1][0]["e"]
        mu1 = np.where(sums[1][2], np.nan, e1 / mult)
        return own, mu1

    @staticmethod
    def _tail(summed: tuple, a_t: np.ndarray, phi_t: np.ndarray, c_w: np.ndarray,
              fam: np.ndarray) -> np.ndarray:
        """Raw score of one window's sums: noise (a u + φ) per day plus the estimated level's
        error (shared by the window's days) and the weekday factor's (per day)."""
        acc, cl, bad = summed
        v_noise = a_t * acc["u2"] + phi_t * acc["sq"]
        relvar = v_noise / np.maximum(acc["sq"], 1e-300)  # the days' mean relative variance
        var = v_noise + (acc["e"] ** 2 * cl + acc["sq"] * c_w) * relvar
        s = tail_scores(fam, acc["x"], acc["e"], var, np.where(acc["n"] > 0, acc["n"], np.nan))
        return np.where(bad | ~np.isfinite(var), np.nan, s)

    @staticmethod
    def _fit(y: np.ndarray, u: np.ndarray, kpis: np.ndarray, dims: np.ndarray, fam: np.ndarray,
             cfg: CountLikelihoodConfig, a_given: np.ndarray | None = None, lag: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
        """(a, φ) per [period, series] from the 1-day residuals before each refit block
        (``lag``: the last rows before it are not known yet, centred residuals)."""
        a_t = np.full(y.shape, np.nan)
        phi_t = np.full(y.shape, np.nan)
        t, every = len(y), cfg.fit_every_days
        for kpi in np.unique(kpis):
            cols = np.flatnonzero(kpis == kpi)
            yk, uk = y[:, cols], u[:, cols]
            n_ok = np.cumsum(np.isfinite(yk), axis=0).max(axis=1)  # largest series' count
            for b, e in blocks(t, every, every):
                if b - lag < 1 or n_ok[b - 1 - lag] < cfg.min_fit:
                    continue
                known = (float(a_given[b, cols[0]]) if a_given is not None
                         else 1.0 if fam[cols[0]] in ("count", "conv") else None)
                if known is not None and not np.isfinite(known):
                    continue
                lo = max(0, b - cfg.fit_window)
                a, phi = fit_noise(yk[lo:b - lag], uk[lo:b - lag], dims[cols], cfg, known)
                a_t[b:e, cols] = a
                phi_t[b:e, cols] = phi[None, :]
        return a_t, phi_t
