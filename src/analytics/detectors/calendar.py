"""Planned marketing-calendar days and the series they concern: which rows a detector mutes
(``calendar_mask``) and where the consensus mutes (``mute_grid``), one rule for both."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from shocklab.catalogue import PAIR_DIMENSION, PAIR_SEP


def scope_pairs(scope: str) -> list[tuple[str, str]]:
    """``channel=email,country=US`` -> [("channel", "email"), ("country", "US")]; ``all`` -> [].
    A part without ``=`` continues the value before it, so a segment holding a comma (a
    ``--kpis`` or transactions file's country ``Korea, Republic of``) is named as written:
    ``country=Korea, Republic of``. Store names never hold ``,`` ``=`` ``|`` (the simulator's
    config refuses them), so a store's scopes read as before."""
    pairs: list[list[str]] = []
    for part in str(scope).split(","):
        dim, sep, value = part.partition("=")
        if sep:
            pairs.append([dim, value])
        elif pairs:
            pairs[-1][1] += "," + part
    return [(d, v) for d, v in pairs]


def mute_grid(series: list[tuple[str, str, str]], grid: pd.DatetimeIndex,
              mute: Iterable[pd.Timestamp] | pd.DataFrame) -> np.ndarray:
    """Where the consensus mutes: plain dates on every series ([1, period]); a marketing
    calendar by scope, ``calendar_mask`` for each (kpi, dimension, segment) of ``series`` ×
    period of ``grid`` ([series, period]). A one-channel campaign muted every series of the
    store that day, so an outage on another channel that day was dropped (audit 2026-12-05)."""
    if not isinstance(mute, pd.DataFrame):
        out = np.zeros((1, len(grid)), dtype=bool)
        idx = grid.get_indexer(pd.DatetimeIndex(list(mute))) if mute else np.array([], int)
        out[0, idx[idx >= 0]] = True
        return out
    out = np.zeros((len(series), len(grid)), dtype=bool)
    days = pd.DatetimeIndex(pd.to_datetime(mute["date"])).normalize().unique()
    t = np.flatnonzero(grid.normalize().isin(days)) if len(series) else np.array([], int)
    if not len(t):
        return out
    keys = pd.DataFrame(series, columns=["kpi", "dimension", "segment"])
    rows = keys.loc[keys.index.repeat(len(t))].reset_index(drop=True)
    rows["date"] = np.tile(grid[t].to_numpy(), len(keys))
    out[:, t] = calendar_mask(rows, mute).reshape(len(keys), len(t))
    return out


def calendar_mask(series: pd.DataFrame, calendar: pd.DataFrame | None) -> np.ndarray:
    """Rows of ``series`` on a planned marketing-calendar day that concerns their slice.

    A calendar scope of ``all`` concerns every slice; ``channel=email`` concerns the email slice
    and every slice of other dimensions (overall, countries …), not the other channels, nor the
    channel x country cells of the other channels (a cell ``"<channel>|<country>"`` is inside its
    channel and its country, as scoring places it).
    """
    mask = np.zeros(len(series), dtype=bool)
    if calendar is None or not len(calendar):
        return mask
    dates = series["date"].dt.normalize()
    # "<channel>|<country>" cells: their channel and country, per row (split once per segment)
    cell = (series["dimension"] == PAIR_DIMENSION).to_numpy()
    cell_of: dict[str, np.ndarray] = {}
    if cell.any():
        codes, segs = pd.factorize(series["segment"].astype(str))
        split = [str(v).split(PAIR_SEP, 1) for v in segs]
        two = np.array([len(p) == 2 for p in split] + [False])[codes]
        cell = cell & two
        cell_of = {key: np.array([p[i] if len(p) == 2 else "" for p in split] + [""],
                                 dtype=object)[codes]
                   for i, key in enumerate(("channel", "country"))}
    scopes = (
        calendar["scope"].astype(str)
        if "scope" in calendar.columns
        else pd.Series("all", index=calendar.index)
    )
    for scope, cal in calendar.groupby(scopes.to_numpy(), sort=True):
        on_day = dates.isin(pd.DatetimeIndex(cal["date"]).normalize()).to_numpy()
        concerned = np.ones(len(series), dtype=bool)
        for dim, value in scope_pairs(scope):
            concerned &= ~(
                (series["dimension"] == dim) & (series["segment"] != value)
            ).to_numpy()
            if dim in cell_of:  # a cell of another channel (country) is not concerned
                concerned &= ~(cell & (cell_of[dim] != value))
        mask |= on_day & concerned
    return mask
