"""count_likelihood with a known expected value or a known shape (``diagnose_detect --expected``).

A probe of what estimation work on count_likelihood's expected value could give (issue 9,
fifty-eighth session), with everything else as shipped (its noise fit, calibration, the
consensus): ``expected_parts`` (count_likelihood.py) is replaced, for the detect stage only, by

- ``truth``: the simulator's noise-free, shock-free expectation (truth/baseline_daily.csv), no
  level or weekday error in the null — the ceiling of any expected value;
- ``shape:W``: the truth's *shape* (its weekday, season, trend, calendar and lasting steps) times a
  level the detector must still estimate from the data: the trimmed mean (count_likelihood's
  ``expected.level_trim``) of actual / truth over the W days up to each day, whose error variance
  (trim factor / days) stays in the null; no weekday error. A trailing level of W days behind a
  right shape: how much a long level is worth once the shape no longer makes it lag.

A candidate shape can be judged here before it is built: replace the truth's shape with it in
``parts``. Series the truth has no row for get no expected value (no score), as in
``cl_windows.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

MODE = re.compile(r"^(truth|shape:(\d+))$")


def parse_mode(text: str) -> tuple[str, int | None]:
    """``truth`` -> ("truth", None); ``shape:W`` (W >= 7 days) -> ("shape", W); else ValueError
    naming the accepted forms."""
    m = MODE.match(text.strip())
    if m is None or (m.group(2) is not None and int(m.group(2)) < 7):
        raise ValueError(f"--expected {text!r}: give truth or shape:W with W >= 7 days")
    return ("truth", None) if m.group(2) is None else ("shape", int(m.group(2)))


def parts(truth: np.ndarray, clean: np.ndarray, cfg, mode: str, window: int | None) -> tuple:
    """(factor, c_w, level) as ``count_likelihood.expected_parts`` returns them, from ``truth``
    [day, series] (the expected value with no shock) and the detector's ``clean`` values. The
    factor is the truth over a constant per series (its median), so revenue's units (expected
    orders x factor) keep their scale; the level carries that constant."""
    from analytics.detectors.baseline import Level, trim_factor, trimmed_rolling

    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.where(truth > 0, truth, np.nan)
        c = np.nanmedian(pos, axis=0)[None, :] * np.ones(clean.shape)
        z = np.zeros(clean.shape)
        if mode == "truth":
            return pos / c, z.copy(), Level(c, z, 1.0, z.copy(), z.copy(), cfg.window, None)
        rel = clean / pos
    trim, w = cfg.expected.level_trim, int(window)
    m, n = trimmed_rolling(rel, w, trim, min(cfg.min_periods, w))
    c_flat = trim_factor(trim) / np.maximum(n, 1)
    return pos / c, z.copy(), Level(c * m, z, (w + 1) / 2, c_flat, z.copy(), w, None)


@contextmanager
def known_expected(truth_of: Callable, mode: str, window: int | None) -> Iterator[None]:
    """While open, count_likelihood's expected value comes from ``parts`` (``truth_of(wide)``:
    the truth per [grid day, series] of the detector's series); restored after."""
    from analytics.detectors import count_likelihood as clm

    orig = clm.expected_parts
    clm.expected_parts = lambda clean, wide, cfg: parts(truth_of(wide), clean, cfg, mode, window)
    try:
        yield
    finally:
        clm.expected_parts = orig
