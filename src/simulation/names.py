"""Which channel, country, category and calendar names the data directory can carry.

A name is written into CSV cells (read back by pandas), the calendar's scopes
(``channel=email``), channel x country cells (``email|US``), file names, JSON and Markdown
headings; ``why_bad_name`` says why one would not survive them (``config.SimulationConfig``
refuses it, exit 2 naming the key).
"""

from __future__ import annotations

from shocklab.textfile import control_character  # shared with the analysis' names

# What pandas' CSV reader takes for "no value" (pandas.io.parsers' STR_NA_VALUES; the simulator
# imports no pandas). A channel, country or category with such a name was written, and the
# analysis then refused the data set it had just been given ("column 'country' has an empty/NaN
# value"), e.g. for Namibia's code NA.
CSV_MISSING_WORDS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def unreadable_name(name: str) -> str | None:
    """Why a segment name would not survive the data directory's CSV files; None if it does."""
    if not name.strip():
        return "is empty or blank (a CSV cell reads back as no value)"
    if name in CSV_MISSING_WORDS:
        return "reads back from CSV as a missing value (pandas' word for 'no value')"
    return None


def why_bad_name(name: str, scoped: bool = True) -> str | None:
    """Why ``name`` cannot be a segment's (``scoped``: a channel, country or category, written in
    calendar scopes and channel x country cells) or a calendar entry's name; None if it can."""
    why = unreadable_name(name) or control_character(name)
    if why is None and scoped and any(c in name for c in ",=|"):
        # the calendar's scope (channel=email, country=US) and a channel x country cell
        # (email|US) are written with these: a channel "e,m" was never planned on its
        # own calendar days (read as channel=e and m=)
        why = "holds ',', '=' or '|' (calendar scopes and channel|country cells use them)"
    return why
