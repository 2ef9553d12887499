"""Cells a spreadsheet would run as formulas (CSV injection, OWASP): a text beginning with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return. A real transactions file's customer id
``=HYPERLINK("http://…","click")`` or ``+cmd|' /C calc'!A0`` went unchanged into the action list a
retention team downloads and opens in Excel.

``neutralize_formulas`` is for the exports made for people (the dashboard's and the API's action
list downloads): it puts a single quote before such a text, OWASP's advice, so a spreadsheet shows
it as text. A plain number (``-42``, ``+3.5``) is left as it is. The run directory's
``customers/*.csv`` keep every id exactly as read: they are the data (the key back to the store's
own records, read again by the API), not a spreadsheet export.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("shocklab.analysis")

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def formula_cells(s: pd.Series) -> pd.Series:
    """Per cell of ``s``: a text a spreadsheet would read as a formula (not a plain number)."""
    if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
        return pd.Series(False, index=s.index)
    vals = s.to_numpy(dtype=object)
    return pd.Series(np.fromiter(
        (isinstance(v, str) and v.startswith(FORMULA_START) and _NUMBER.fullmatch(v) is None
         for v in vals), dtype=bool, count=len(vals)), index=s.index)


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a single quote before every formula-like text cell (numbers, dates and other
    texts unchanged); ``df`` itself when no cell is one."""
    out = df
    for col in df.columns:
        hit = formula_cells(df[col])
        if hit.any():
            if out is df:
                out = df.copy()
            out[col] = df[col].astype(object).where(~hit, "'" + df[col].astype(str))
    return out


def warn_formula_ids(ids: pd.Series, path: Path) -> None:
    """One warning counting the customer ids of ``path`` (a --transactions file) that begin like a
    formula: the run's customers/*.csv keep them as read, where a spreadsheet may run them."""
    odd = ids[formula_cells(ids)]
    if len(odd):
        log.warning("%s: %d customer id(s) begin like a spreadsheet formula (e.g. %r): kept as "
                    "read in customers/*.csv, where a spreadsheet may run them; the dashboard's "
                    "and the API's action-list downloads write them as text", path, len(odd),
                    str(odd.iloc[0])[:40])
