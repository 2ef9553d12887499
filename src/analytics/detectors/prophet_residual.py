"""Prophet forecast residual: weekly + yearly seasonality and the observable marketing calendar
as holidays (one effect per named day plus one shared per kind, so an unseen campaign still gets
the average campaign effect). Series are modelled in log space when strictly positive.

``walk_forward`` (default, causal) refits on past data only (the base class's plan: after
``min_train`` periods, again whenever the history has doubled, then every ``refit_every`` days;
``retrain_every`` is accepted as the old name) and scores the following block out of sample;
``in_sample`` fits once on everything (labelled ``mode=in_sample``).
Scale: with ``recentre_window = 0`` the residual is divided by the robust spread of the in-sample
(training) residuals; with N > 0 (default 28) it is a z against the median and spread of the
previous N out-of-sample residuals, which removes the forecast drift between refits (the
in-sample spread is the fallback until N/2 of them exist).
Sub-daily data get Prophet's daily seasonality as well. The raw score goes through the shared
calibrator (``calibrate.py``) like every detector's.
Series are fitted in parallel worker processes. ``uncertainty_samples=0`` keeps Prophet off the
global random state (and makes it faster): the detector needs only ``yhat``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import AliasChoices, Field

from shocklab.children import die_with_parent

from .base import Detector, DetectorInput, WalkForwardConfig, group_slices, register, robust_scale
from .calibrate import CalibrationConfig


class ProphetResidualConfig(WalkForwardConfig):
    type: Literal["prophet_residual"] = "prophet_residual"
    refit_every: int = Field(
        365,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("refit_every", "retrain_every"),
        description="longest gap between walk-forward refits, in days (refits also "
        "happen whenever the history has doubled)",
    )
    calibration: CalibrationConfig = Field(
        default_factory=lambda: CalibrationConfig(tail_df=3.5, tail_gain=1.8),
        description="tail fitted on shock-free train worlds (seeds 1-3)",
    )
    yearly_min_days: int = Field(
        365, ge=30, le=10_000, description="fit yearly seasonality only with this much history"
    )
    log_transform: bool = Field(
        True, description="model log(y) when the series is strictly positive"
    )
    mask_flagged: bool = Field(
        False,
        description="drop points already flagged from later training sets "
        "(past shocks do not bend the next fit)",
    )
    changepoint_prior_scale: float = Field(0.05, gt=0, le=10)
    seasonality_prior_scale: float = Field(10.0, gt=0, le=100)
    holidays_prior_scale: float = Field(10.0, gt=0, le=100)
    recentre_window: int = Field(
        28,
        ge=0,
        le=10_000,
        description="0: z = residual / in-sample spread. N: "
        "z of the residual against the median and spread of the previous N out-of-sample "
        "residuals (removes forecast drift between refits; in-sample spread until N/2 exist)",
    )
    use_calendar: bool = Field(True, description="marketing calendar days as Prophet holidays")
    n_jobs: int = Field(
        0,
        ge=0,
        le=256,
        description="worker processes; 0 = all CPUs (serial inside a sweep worker), 1 = serial",
    )


def _quiet() -> None:
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.CRITICAL)  # also hides "Importing plotly failed"
    warnings.filterwarnings("ignore", module="prophet")


def _fit_predict(
    train: pd.DataFrame,
    future: pd.DataFrame,
    holidays: pd.DataFrame | None,
    cfg: dict[str, Any],
    sub_daily: bool,
) -> np.ndarray:
    from prophet import Prophet

    span_days = (train["ds"].iloc[-1] - train["ds"].iloc[0]).days
    model = Prophet(
        uncertainty_samples=0,
        yearly_seasonality=span_days >= cfg["yearly_min_days"],
        weekly_seasonality=span_days >= 14,
        daily_seasonality=sub_daily,
        holidays=holidays,
        changepoint_prior_scale=cfg["changepoint_prior_scale"],
        seasonality_prior_scale=cfg["seasonality_prior_scale"],
        holidays_prior_scale=cfg["holidays_prior_scale"],
    )
    model.fit(train)
    return model.predict(future)["yhat"].to_numpy()


def score_one_series(
    ds: np.ndarray,
    y: np.ndarray,
    holidays: pd.DataFrame | None,
    cfg: dict[str, Any],
    sub_daily: bool,
    blocks: list[tuple[int, int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and expected values (original units) for one series; NaN where not scored."""
    _quiet()
    n = len(y)
    use_log = cfg["log_transform"] and np.all(y[np.isfinite(y)] > 0)
    yt = np.log(y) if use_log else y.astype(float)
    score = np.full(n, np.nan)
    yhat_all = np.full(n, np.nan)
    threshold = cfg["mask_threshold"]
    planned = (
        np.isin(ds, holidays["ds"].to_numpy()) if holidays is not None else np.zeros(n, dtype=bool)
    )
    in_sample = cfg["mode"] == "in_sample"
    for (
        t0,
        t1,
        t2,
    ) in blocks:  # (train start, train end = block start, block end); see Detector.fit_blocks
        train_start, train_end, lo, hi = (0, n, 0, n) if in_sample else (t0, t1, t1, t2)
        y_train = yt[:train_end].copy()
        if cfg["mask_flagged"] and cfg["mode"] != "in_sample":
            # calendar days stay: the holiday terms learn from them (dropping them leaves those
            # terms unidentified and the fit can diverge)
            y_train[(np.abs(score[:train_end]) >= threshold) & ~planned[:train_end]] = np.nan
        y_train[:train_start] = np.nan
        train = pd.DataFrame({"ds": ds[:train_end], "y": y_train}).dropna()
        if len(train) < 14:
            continue
        # with recentring the in-sample spread is only a fallback, so predict just a recent tail
        # of the training span (prediction costs about a third of a fit)
        first = (
            train_start
            if in_sample or cfg["recentre_window"] == 0
            else max(train_start, train_end - max(2 * cfg["recentre_window"], 56))
        )
        yhat = _fit_predict(train, pd.DataFrame({"ds": ds[first:hi]}), holidays, cfg, sub_daily)
        resid_train = yt[first:train_end] - yhat[: train_end - first]
        scale = robust_scale(resid_train[np.isfinite(y_train[first:])])
        if not np.isfinite(scale):
            continue
        score[lo:hi] = (yt[lo:hi] - yhat[lo - first :]) / scale
        yhat_all[lo:hi] = yhat[lo - first :]
    if cfg["recentre_window"] > 0:
        score = _recentre(yt - yhat_all, score, cfg["recentre_window"])
    expected = np.exp(yhat_all) if use_log else yhat_all
    return score, expected


def _recentre(resid: np.ndarray, score: np.ndarray, window: int) -> np.ndarray:
    """z of each residual against the previous ``window`` residuals (median, 1.4826·MAD)."""
    r = pd.Series(resid)
    past = r.shift(1)
    mp = max(window // 2, 3)
    med = past.rolling(window, min_periods=mp).median()
    mad = 1.4826 * (past - med).abs().rolling(window, min_periods=mp).median()
    z = (r - med) / mad.where(mad > 0)
    return np.where(np.isfinite(z.to_numpy()) & np.isfinite(score), z.to_numpy(), score)


def _worker_count(requested: int) -> int:
    """``n_jobs`` 0 means all CPUs — but only in a top-level process: inside a sweep's worker
    (or any daemonic process, which may not have children) the fits run serially, since the
    sweep already parallelizes across cells."""
    if multiprocessing.current_process().daemon:
        return 1
    if requested:
        return requested
    return 1 if multiprocessing.parent_process() is not None else (os.cpu_count() or 1)


def _worker(args: tuple) -> tuple[np.ndarray, np.ndarray, str | None]:
    try:
        return (*score_one_series(*args), None)
    except Exception as exc:  # one series failing must not sink the others
        n = len(args[1])
        return np.full(n, np.nan), np.full(n, np.nan), f"{type(exc).__name__}: {exc}"


@register
class ProphetResidual(Detector):
    type_name = "prophet_residual"

    @property
    def core_reads_threshold(self) -> bool:
        """``mask_flagged`` leaves points beyond the threshold out of later fits: the raw scores
        then depend on it, so a sweep may not reuse them across thresholds (experiments.cell)."""
        return bool(self.config.mask_flagged)
    config_class = ProphetResidualConfig

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cfg: ProphetResidualConfig = self.config  # type: ignore[assignment]
        _quiet()
        import prophet  # noqa: F401  (imported once here so forked workers inherit it)

        holidays = None
        if cfg.use_calendar and inp.calendar is not None and len(inp.calendar):
            cal = inp.calendar
            # one effect per named day plus one shared per kind, so a campaign never seen before
            # still gets the average campaign effect
            holidays = (
                pd.concat(
                    [
                        pd.DataFrame(
                            {
                                "holiday": cal["name"].astype(str).to_numpy(),
                                "ds": cal["date"].to_numpy(),
                            }
                        ),
                        pd.DataFrame(
                            {
                                "holiday": ("kind:" + cal["kind"].astype(str)).to_numpy(),
                                "ds": cal["date"].to_numpy(),
                            }
                        ),
                    ]
                )
                .drop_duplicates()
                .sort_values(["holiday", "ds"])
                .reset_index(drop=True)
            )
        cfg_d = cfg.model_dump()
        groups = list(group_slices(series))
        cfg_d["mask_threshold"] = self.threshold(
            inp
        )  # mask_flagged: the cut, read on the raw scale
        ppd = inp.periods_per_day
        tasks = [
            (
                g["date"].to_numpy(),
                g["value"].to_numpy(dtype=float),
                holidays,
                cfg_d,
                ppd > 1,
                self.fit_blocks(len(g), ppd),
            )
            for _, g in groups
        ]
        n_jobs = min(_worker_count(cfg.n_jobs), len(tasks))
        if n_jobs <= 1:
            results = [_worker(t) for t in tasks]
        else:
            ctx = (
                multiprocessing.get_context("fork")
                if "fork" in multiprocessing.get_all_start_methods()
                else None
            )
            # killed with this process (a kill -9 left the pool's workers blocked for good)
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx,
                                     initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                results = list(pool.map(_worker, tasks, chunksize=1))
        score = pd.Series(np.nan, index=series.index)
        expected = pd.Series(np.nan, index=series.index)
        errors = []
        for (key, g), (s, e, err) in zip(groups, results, strict=True):
            score.loc[g.index] = s
            expected.loc[g.index] = e
            if err:
                errors.append(f"{'/'.join(map(str, key))}: {err}")
        if errors and len(errors) == len(groups):
            raise RuntimeError(f"Prophet failed on every series ({errors[0]})")
        self.warnings_ = errors
        return pd.DataFrame({"score": score, "expected": expected}, index=series.index)
