"""Rolling z-score: distance of each point from a trailing window that excludes the point itself.

Seasonal adjustment (``weekday_adjust``) divides each value by its slot factor: a statistic of
the same slot over the previous weeks over the mean of all slots' (daily data: ``weekday_stat``
of each weekday over ``weekday_weeks_daily`` weeks, shipped median, so one shocked day does not
move its weekday's factor; sub-daily data: the median of the slot's readings over
``weekday_weeks`` weeks, so a few spikes do not set an hour's factor).
A slot is the weekday for daily data and the hour of the week (weekday x clock hour, whatever
minute the file starts at: ``slots.py``) for sub-daily data, so the weekly and the daily cycle
neither inflate the spread nor bias the score. Sub-daily data switch from hour-of-day to
hour-of-week factors after two weeks; the rows after the switch are scored in a second pass whose
reference is divided by the hour-of-week factor too (``slots.slot_factors``).
Planned marketing-calendar days are kept out of the baselines and, with ``calendar: mute``,
never flagged. The spread never goes below the count-aware noise floor of the KPI (Poisson for
counts, binomial for conversion, 1/sqrt(orders) for AOV and revenue; ``calibrate.noise_floor``),
so a small slice's quiet stretch cannot make a tiny move look enormous.

Vectorized over series: one [period x series] matrix, every rolling statistic column-wise
(``calibrate.Wide``). Windows count periods of the series' own step (days, or hours).
"""

from __future__ import annotations

import warnings
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .base import Detector, DetectorConfig, DetectorInput, calendar_mask, register
from .calibrate import (
    COUNT_KPIS,
    CalibrationConfig,
    Wide,
    Window,
    calibrate_wide,
    log_noise_floor,
    noise_floor,
    own_log_offset,
    rolling,
    shift,
)
from .share import parent_columns, share_scores
from .short_history import early_scores, flat_score, floor_spread
from .slots import roll_same_slot, slot_factors


class RollingZScoreConfig(DetectorConfig):
    type: Literal["rolling_zscore"] = "rolling_zscore"
    window: int = Field(28, ge=3, le=1_000_000, description="trailing periods in the baseline")
    min_periods: int = Field(
        14, ge=2, le=1_000_000, description="no score before this many baseline periods"
    )
    method: Literal["mean_std", "median_mad"] = "median_mad"
    spread_window: int | None = Field(
        None,
        ge=7,
        le=1_000_000,
        description="median_mad on daily data: the spread is the MAD of the past one-step errors "
        "(each past period against its own baseline) over this many periods, instead of the "
        "past points' deviations from today's centre over `window` (null = that; sub-daily "
        "data always use that)",
    )
    spread_model: Literal["mad", "floor_ratio"] = Field(
        "mad",
        description="daily data with count_floor: mad = MAD over `window` (or spread_window), "
        "never below the count floor; floor_ratio = the count floor at the level x the robust "
        "ratio of past one-step errors to their floor over `spread_window` (182 when null) "
        "periods (long-run, count-aware: little estimation noise). KPIs without a floor and "
        "sub-daily data keep mad",
    )
    kappa_min: float = Field(0.25, gt=0, le=10, description="floor_ratio: ratio never below this")
    ratio_calibration: dict[Window, CalibrationConfig] = Field(
        default_factory=lambda: {
            1: CalibrationConfig(tail_df=20, tail_gain=1.05),
            3: CalibrationConfig(tail_df=20, tail_gain=1.05),
            7: CalibrationConfig(tail_df=50, tail_gain=0.9),
        },
        description="own windows' calibration under floor_ratio (lighter tails than a 28-period "
        "MAD gives); fitted on shock-free TRAIN worlds n1-n5",
    )
    same_weekday: bool = Field(
        False,
        description="baseline from the same slot of earlier weeks only (weekday; "
        "weekday x time of day for sub-daily data); window then counts those",
    )
    weekday_adjust: bool = Field(
        True, description="divide by a trailing weekday (x hour of day) factor first"
    )
    weekday_weeks: int = Field(8, ge=2, le=520, description="weeks behind the weekday factor")
    weekday_weeks_daily: int | None = Field(
        None, ge=2, le=520,
        description="weeks behind the factor on daily data (null = weekday_weeks; sub-daily "
        "data always use weekday_weeks)",
    )
    weekday_stat: Literal["mean", "median"] = Field(
        "mean",
        description="statistic of each weekday over those weeks (daily data only; sub-daily "
        "data always take the median of each hour's readings): median = one shocked day weeks "
        "ago does not move the factor",
    )
    smooth: int = Field(
        1,
        ge=1,
        le=10_000,
        description="score the mean of the last `smooth` periods against the "
        "baseline before them (catches slow, small shifts)",
    )
    windows: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=list,
        description="more trailing windows (periods) scored besides `smooth`: the mean of the "
        "last k periods against the baseline before them, each calibrated on its own, combined "
        "with the main score by Bonferroni (min p x number of windows), so slow, small shifts "
        "add up and the knob stays honest (e.g. [3, 7])",
    )
    window_calibration: dict[Window, CalibrationConfig] = Field(
        default_factory=lambda: {
            3: CalibrationConfig(tail_df=10, tail_gain=1.25),
            7: CalibrationConfig(tail_df=7.5, tail_gain=1.4),
        },
        description="calibration of a window's scores (default: `calibration`); fitted on "
        "shock-free TRAIN worlds",
    )
    window_power: float = Field(
        1.0, ge=0, le=1,
        description="daily data: the windows' scores (own and share) are combined by the "
        "smallest tail probability x m ** window_power for m windows (1 = Bonferroni, safe "
        "whatever their correlation; < 1 counts the correlated windows as fewer looks; fit it "
        "on shock-free worlds so the knob holds). Sub-daily input keeps 1",
    )
    reference: Literal["own", "parent", "both"] = Field(
        "own",
        description="what a slice (channel, country, category, cell) is judged against: own = "
        "its own history; parent = its log share of the overall series of the same KPI that day "
        "(store-wide noise, seasonality, trend and shocks cancel; store-wide shocks stay caught "
        "on the overall series); both = own and parent scores, Bonferroni-combined",
    )
    share_window: int = Field(
        56, ge=7, le=1_000_000, description="trailing periods of the share baseline (parent)"
    )
    share_gate: float | None = Field(
        None, ge=0, le=100,
        description="a slice's share score counts only where its own score over the same "
        "window (on its own past scale) has the same sign and at least this size; elsewhere it "
        "counts as 0. A shock on one slice moves its siblings' shares, not their own values "
        "(null = off)",
    )
    share_gate_ratio: float = Field(
        0.0, ge=0, le=1,
        description="and at least this fraction of the share score (both on their own past "
        "scale): a large share move needs a visible move of the slice itself",
    )
    share_spread_window: int = Field(
        182, ge=7, le=1_000_000,
        description="trailing periods of the share's spread (MAD around its baseline)",
    )
    share_calibration: dict[Window, CalibrationConfig] = Field(
        default_factory=lambda: {
            1: CalibrationConfig(tail_df=20, tail_gain=1.11),
            3: CalibrationConfig(tail_df=20, tail_gain=1.11),
            7: CalibrationConfig(tail_df=20, tail_gain=1.11),
        },
        description="calibration of the share scores per window (reference parent / both); "
        "fitted on shock-free TRAIN worlds (seeds 1-5): t(20) x 1.11 matches each window's "
        "per-point tail (the share's own noise is near-normal once counts are on the Anscombe "
        "scale); gated and Bonferroni-combined: 0.074 false alerts per series per 90 days at "
        "knob 0.1 when fitted (gain 1.2: 0.095), 0.090 on shock-free test worlds (2026-12-04)",
    )
    calendar: Literal["ignore", "exclude", "mute"] = Field(
        "exclude",
        description="planned calendar days: ignore | exclude from baselines | "
        "exclude and never flag",
    )
    min_rel_std: float = Field(
        0.0,
        ge=0,
        le=1,
        description="floor on the spread as a fraction of the "
        "baseline level (stops tiny-variance series from exploding)",
    )
    count_floor: bool = Field(
        True,
        description="spread never below the Poisson / binomial noise of the KPI's "
        "counts (known KPIs only)",
    )
    value_cv: float = Field(
        1.5,
        ge=0,
        le=10,
        description="coefficient of variation of one order's value (AOV and revenue noise floors)",
    )
    sqrt_counts: bool = Field(
        True,
        description="judge count KPIs after the Anscombe transform 2 sqrt(x + 3/8) "
        "(Poisson noise becomes symmetric with unit spread: the noise floor is 1) and "
        "conversion after arcsin(sqrt(p)) (binomial: spread 1 / (2 sqrt(sessions)))",
    )
    calibration: CalibrationConfig = Field(
        default_factory=lambda: CalibrationConfig(tail_df=13, tail_gain=1.11),
        description="tail fitted on shock-free train worlds (seeds 1-3)",
    )
    early_min: int | None = Field(
        None, ge=2, le=1_000_000,
        description="--kpis profile (external.early_min): where the seasonal score is missing "
        "(sub-daily warm-up, slots without a factor), score the unadjusted value from this many "
        "reference periods on, t-widened for the short reference (short_history.py); null = off",
    )
    flat_floor: float | None = Field(
        None, ge=0, le=10,
        description="--kpis profile (external.flat_floor): spread never below this fraction of "
        "the std of the previous day of periods; a departure from a perfectly flat reference "
        "scores a fixed large value (short_history.py); null = off (0 / 0: no score)",
    )
    log_kpis: list[str] = Field(
        default_factory=lambda: ["revenue", "aov"],
        description="KPIs judged in log space "
        "(right-skewed money KPIs: one large basket on a small slice is not a shock); "
        "revenue as log(revenue + one typical order)",
    )


def slice_daily(inp: DetectorInput, wide: Wide, col: str) -> np.ndarray | None:
    """Daily ``col`` (orders or sessions) of each column's slice on the wide grid, or None."""
    c = inp.counts
    if c is None or not len(c) or col not in c.columns:
        return None
    piv = c.pivot_table(index="date", columns=["dimension", "segment"], values=col, aggfunc="first")
    piv = piv.reindex(wide.grid)
    cols = pd.MultiIndex.from_tuples([(d, s) for _, d, s in wide.keys])
    return piv.reindex(columns=cols).to_numpy(dtype=float)


def slice_counts(
    inp: DetectorInput, wide: Wide, window: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Expected orders and sessions of each column's slice (trailing median, causal) or None."""
    out = []
    for col in ("orders", "sessions"):
        arr = slice_daily(inp, wide, col)
        out.append(None if arr is None else rolling(shift(arr, 1), window, 1, "median"))
    return out[0], out[1]


@register
class RollingZScore(Detector):
    type_name = "rolling_zscore"
    config_class = RollingZScoreConfig
    # diagnosis only (bench/diagnose_detect.py --why): a dict here receives the wide internals of
    # the next run (per window k: (current, centre, spread); "factor", "offset", "keys"); None =
    # nothing kept
    parts: dict | None = None

    # set by each run (_detect_core): daily data / the floor_ratio spread in use
    _daily = False
    _ratio_on = False

    @property
    def window_power(self) -> float:
        """``window_power`` on daily data; sub-daily (--kpis) input keeps Bonferroni."""
        return self.config.window_power if self._daily else 1.0  # type: ignore[attr-defined]

    def calibration_for(self, column: str) -> CalibrationConfig:
        cfg: RollingZScoreConfig = self.config  # type: ignore[assignment]
        label = column.partition("@")[2]
        if label.startswith("s"):
            return cfg.share_calibration.get(int(label[1:]), cfg.calibration)
        k = int(label or cfg.smooth)
        if self._ratio_on and k in cfg.ratio_calibration:
            return cfg.ratio_calibration[k]
        return cfg.window_calibration.get(k, cfg.calibration) if label else cfg.calibration

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        """Raw scores; each row is scored on data divided by the seasonal factor of its own pair
        (``slots.slot_factors``): sub-daily rows with an hour-of-week factor are scored against a
        reference divided by hour-of-week factors too, not by the hour-of-day ones of the rows
        before the switch (a second pass over the same data)."""
        cfg: RollingZScoreConfig = self.config  # type: ignore[assignment]
        ppd = inp.periods_per_day
        wide = self.wide(series)
        planned_rows = (
            calendar_mask(series, inp.calendar)
            if cfg.calendar != "ignore"
            else np.zeros(len(series), bool)
        )
        value = wide.to(series["value"].to_numpy(dtype=float))
        clean = np.where(wide.to(planned_rows.astype(float)) == 1, np.nan, value)
        pairs = (
            slot_factors(
                clean, ppd,
                cfg.weekday_weeks_daily or cfg.weekday_weeks if ppd == 1 else cfg.weekday_weeks,
                cfg.weekday_stat, wide.grid[0] if len(wide.grid) else None,
            )
            if cfg.weekday_adjust
            else [(np.ones_like(value), np.ones(value.shape, bool))]
        )
        pairs = [(f, rows) for f, rows in pairs if rows.any()] or pairs[:1]
        if len(pairs) == 1:
            return self._scores(series, inp, wide, planned_rows, pairs[0][0])
        runs, parts, store = [], {}, self.parts  # diagnostics: each row's own pass
        for factor, rows in pairs:
            if store is not None:
                store.clear()
            runs.append((self._scores(series, inp, wide, planned_rows, factor), rows))
            for key, val in (store or {}).items():
                if isinstance(val, tuple):
                    val = tuple(np.where(rows, a, parts[key][i]) if key in parts else a
                                for i, a in enumerate(val))
                elif key == "factor":
                    val = np.where(rows, val, parts[key]) if key in parts else val
                parts[key] = val
        if store is not None:
            store.update(parts)
        out = runs[0][0].copy()
        for run, rows in runs[1:]:
            take = wide.back(rows)
            out.loc[take] = run.loc[take]
        return out

    def _scores(
        self, series: pd.DataFrame, inp: DetectorInput, wide: Wide, planned_rows: np.ndarray,
        factor: np.ndarray,
    ) -> pd.DataFrame:
        """Raw scores of every row on data divided by ``factor``."""
        cfg: RollingZScoreConfig = self.config  # type: ignore[assignment]
        ppd = inp.periods_per_day
        per_week = 7 * ppd
        value = wide.to(series["value"].to_numpy(dtype=float))
        planned = wide.to(planned_rows.astype(float)) == 1
        clean = np.where(planned, np.nan, value)  # what baselines may learn from
        adj, adj_clean = value / factor, clean / factor
        kpis = np.array([k for k, _, _ in wide.keys])
        orders, sessions = (
            slice_counts(inp, wide, max(cfg.window, 7 * ppd))
            if cfg.count_floor or cfg.log_kpis
            else (None, None)
        )
        logc = np.isin(kpis, cfg.log_kpis)
        sqc = np.isin(kpis, COUNT_KPIS) & cfg.sqrt_counts & ~logc
        if sqc.any():
            for a in (adj, adj_clean):
                a[:, sqc] = 2 * np.sqrt(np.maximum(a[:, sqc], 0) + 0.375)
        asc = np.isin(kpis, ["conversion_rate"]) & cfg.sqrt_counts & ~logc & (sessions is not None)
        if asc.any():  # binomial proportion: arcsine square root, spread 1 / (2 sqrt(sessions))
            for a in (adj, adj_clean):
                a[:, asc] = np.arcsin(np.sqrt(np.clip(a[:, asc], 0, 1)))
        offset = np.zeros_like(value)
        # log KPIs without any order count (--kpis revenue alone): a zero must stay scored
        bare = logc & (True if orders is None else ~np.isfinite(orders).any(axis=0))
        if logc.any():
            if (
                orders is not None
            ):  # revenue: + one typical order, so a day without orders stays finite
                rev = np.flatnonzero(kpis == "revenue")
                typical = rolling(
                    shift(clean[:, rev], 1), max(cfg.window, 7 * ppd), 1, "median"
                ) / np.maximum(orders[:, rev], 1)
                offset[:, rev] = np.nan_to_num(typical, nan=0.0)
            if bare.any():  # no order count: one typical order from the series' own noise
                offset[:, bare] = own_log_offset(
                    adj_clean[:, bare], max(cfg.window, 7 * ppd), cfg.value_cv
                )
            with np.errstate(divide="ignore", invalid="ignore"):
                for a in (adj, adj_clean):
                    x = a[:, logc] + offset[:, logc]
                    a[:, logc] = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
        w, mp = cfg.window, min(cfg.min_periods, cfg.window)
        sw = cfg.spread_window if ppd == 1 else None  # --kpis (sub-daily) input: as before
        ratio_model = (cfg.spread_model == "floor_ratio" and ppd == 1 and cfg.count_floor
                       and cfg.method == "median_mad" and not cfg.same_weekday)
        self._daily, self._ratio_on = ppd == 1, ratio_model

        def floor_of(centre: np.ndarray, factor: np.ndarray = factor) -> np.ndarray:
            """Count noise floor per [period, series] (0: none); ``factor`` 1 = at the level."""
            out = np.zeros_like(centre)
            for kpi in np.unique(kpis):
                cols = np.flatnonzero(kpis == kpi)
                o = None if orders is None else orders[:, cols]
                if sqc[cols[0]]:
                    floor = 1 / np.sqrt(factor[:, cols])  # Poisson in Anscombe units
                elif asc[cols[0]]:
                    floor = 0.5 / np.sqrt(np.maximum(sessions[:, cols], 1) * factor[:, cols])
                elif logc[cols[0]]:
                    floor = log_noise_floor(kpi, o, cfg.value_cv)
                else:
                    floor = noise_floor(
                        kpi,
                        centre[:, cols] * factor[:, cols],
                        o,
                        None if sessions is None else sessions[:, cols],
                        cfg.value_cv,
                    )
                    floor = floor / factor[:, cols]
                out[:, cols] = floor
            return out

        ratio_cache: dict[str, np.ndarray] = {}
        unit_f = np.ones_like(factor)  # multiplicative day noise dominates large series: no weekday
        # shape in the modelled spread (a weekday's Poisson part differs by 1/sqrt(factor) only)

        def kappa(k: int) -> np.ndarray:
            """spread_model floor_ratio: robust size of the past one-step errors in units of their
            own day's count floor (MAD over ``spread_window`` periods ending before the scored
            span): the series' noise beyond counting (day factors, baseline error), learned over
            a long window, so the spread is not a noisy 28-period MAD."""
            if "r" not in ratio_cache:
                c1 = rolling(shift(adj_clean, 1), w, mp, "median")
                f1 = floor_of(c1, unit_f)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio_cache["r"] = np.where(f1 > 0, np.abs(adj_clean - c1) / f1, np.nan)
            r = 1.4826 * rolling(shift(ratio_cache["r"], k), sw or 182, mp, "median")
            return np.maximum(r, cfg.kappa_min)

        def window_score(k: int) -> tuple[np.ndarray, np.ndarray]:
            """(score, centre) of the mean of the last ``k`` periods against the baseline before
            them."""
            if k > 1:  # planned days stay out of the smoothed mean too (unless ignored)
                src = adj if cfg.calendar == "ignore" else adj_clean
                cur = rolling(src, k, (k + 1) // 2, "mean")
                n_cur = rolling(np.isfinite(src).astype(float), k, 1, "sum")
                lagged = shift(adj_clean, k)  # baseline ends before the smoothed span
            else:
                cur, lagged, n_cur = adj, shift(adj_clean, 1), np.ones_like(adj)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if cfg.same_weekday:
                    lagged = shift(adj_clean, per_week)
                    roll = lambda a, how: roll_same_slot(a, per_week, w, mp, how)  # noqa: E731
                else:
                    roll = lambda a, how: rolling(a, w, mp, how)  # noqa: E731
                if cfg.method == "mean_std":
                    centre, spread = roll(lagged, "mean"), roll(lagged, "std")
                else:
                    centre = roll(lagged, "median")
                    # MAD approximated by the rolling median of each past point's deviation from
                    # the current trailing median (exact per-window MAD has no compiled rolling
                    # form)
                    spread = 1.4826 * roll(np.abs(lagged - centre), "median")
                    if sw and not cfg.same_weekday:  # MAD of past one-step errors, longer window
                        err = np.abs(adj_clean - rolling(shift(adj_clean, 1), w, mp, "median"))
                        spread = 1.4826 * rolling(shift(err, k), sw, mp, "median")
                spread = np.maximum(spread, cfg.min_rel_std * np.abs(centre))
                if cfg.count_floor:
                    floor = floor_of(centre)
                    if ratio_model:  # spread = long-run noise ratio x the level's count noise
                        model = kappa(k) * floor_of(centre, unit_f)
                        spread = np.where(np.isfinite(model) & (floor > 0), model,
                                          np.maximum(spread, floor))
                    else:
                        spread = np.maximum(spread, floor)  # NaN stays NaN
                if cfg.flat_floor is not None:  # --kpis only: near-constant references
                    spread, flat = floor_spread(spread, lagged, centre, w, ppd,
                                                cfg.flat_floor)
                spread = np.where(spread > 0, spread, np.nan)
                score = (cur - centre) / spread
                if cfg.flat_floor is not None:
                    score = flat_score(score, cur, centre, flat)
            if self.parts is not None:
                self.parts[k] = (cur, centre, spread)
            return score * np.sqrt(n_cur), centre  # a mean of n periods: 1/sqrt(n) of the spread

        if self.parts is not None:
            self.parts.update(factor=factor, offset=offset, keys=wide.keys, grid=wide.grid)
        score, centre = window_score(cfg.smooth)
        if cfg.early_min is not None and ppd > 1 and cfg.smooth == 1:  # --kpis only
            plain = ~(sqc | asc | logc)[None, :] & ~np.isfinite(factor) & ~np.isfinite(score)
            if plain.any():  # causal: only the rows up to the last one that needs it
                end = int(np.flatnonzero(plain.any(axis=1))[-1]) + 1
                early = early_scores(value[:end], clean[:end], w, cfg.early_min, ppd,
                                     cfg.flat_floor)
                score[:end] = np.where(plain[:end], early, score[:end])
        own = {k: window_score(k)[0] for k in sorted(set(cfg.windows) - {cfg.smooth})}
        extra = {f"score@{k}": wide.back(v) for k, v in own.items()}
        own[cfg.smooth] = score
        level = np.where(
            logc[None, :], np.exp(np.where(logc[None, :], centre, 0.0)) - offset, centre
        )
        level = np.where(sqc[None, :], np.maximum((centre / 2) ** 2 - 0.375, 0), level)
        level = np.where(asc[None, :], np.sin(np.clip(centre, 0, np.pi / 2)) ** 2, level)
        expected = level * factor
        if cfg.reference != "own":
            ks = sorted({cfg.smooth, *cfg.windows})
            shares, share_exp = share_scores(
                value, planned, wide.keys, ks, cfg.share_window, cfg.min_periods,
                cfg.share_spread_window, np.where(bare[None, :], 0.0, offset),  # as before
                orders, cfg.count_floor, cfg.value_cv, cfg.calendar == "ignore",
                slice_daily(inp, wide, "sessions"),
            )
            keep = {}
            if cfg.share_gate is not None:  # the slice itself must have moved that way
                for k in ks:
                    unit = CalibrationConfig(tail_df=None)  # each on its own past scale only
                    o = calibrate_wide(own[k], unit, ppd)
                    sh = calibrate_wide(shares[k], unit, ppd)
                    need = np.maximum(cfg.share_gate, cfg.share_gate_ratio * np.abs(sh))
                    ok = (np.sign(o) * np.sign(sh) > 0) & (np.abs(o) >= need)
                    # no share score (overall, warm-up): no veto (a veto counts as a look)
                    keep[f"keep@s{k}"] = wide.back(ok | np.isnan(o) | np.isnan(shares[k]))
            sliced = parent_columns(wide.keys) >= 0
            if cfg.reference != "both":  # slices: the share scores replace their own
                score[:, sliced] = np.nan
                for c in extra:
                    extra[c] = wide.back(np.where(sliced[None, :], np.nan, wide.to(extra[c])))
                expected[:, sliced] = share_exp[:, sliced]
            extra.update({f"score@s{k}": wide.back(shares[k]) for k in ks})
            extra.update(keep)
        out = pd.DataFrame(
            {"score": wide.back(score), "expected": wide.back(expected), **extra},
            index=series.index,
        )
        if cfg.calendar == "mute":
            out["mute"] = planned_rows
        return out
