"""Insights: an LLM-ready ``insights.json`` (validated against ``schemas/insights.schema.json``)
and ``insights.md`` (the same content as a compact brief) explaining a run.

Sections: run · summary (totals, week-over-week and month-over-month changes with drivers and
the planned calendar days each compared window held) · channels (underperformers against their
own trailing baseline, planned days left out of it) · incidents (one per consensus
incident: drivers, signature, planned-event overlap, narrative, action, matched event) · episodes
(overlapping incidents read together) · forecast · seasonality · customers (free-form, filled by
the customers package).

Identical inputs give identical bytes: no wall-clock fields, sorted keys, floats rounded to
``SIG_DIGITS`` significant digits (every digit of the integer part kept). Insights never read
``truth/`` (``matched_event_id`` is set by scoring on the incident).

The package, by concern (each imports only those above it, so there are no loops):

- ``models``    the pydantic output models (the schema is generated from ``Insights``)
- ``common``    number cleaning, config accessor, slice labels, wrappers over ``drivers``
- ``schema``    generate / write / validate the committed JSON Schema
- ``planned``   planned calendar days of a window (by scope); the channels' baseline without them
- ``narrative`` text rendered from an incident's or episode's own fields; actions
- ``diagnosis`` the likely shock type of an episode (funnel arithmetic, slice patterns)
- ``sections``  run, summary, channels, forecast, seasonality
- ``episodes``  incidents explained, grouped into episodes, measured and diagnosed
- ``markdown``  insights.md (brief first, most severe episodes first, ~24 KB budget)
- ``stage``     ``build`` (pure) and ``run`` (writes insights.json, the details file, insights.md)
- ``grounding`` the check that every number, date and direction word in the text is a field
- ``cli``       ``python -m analytics.insights`` (schema tools, ``--check RUN_DIR``)

Regenerate the committed schema after changing a model::

    python -m analytics.insights --write-schema
"""

from __future__ import annotations

from shocklab.catalogue import MAIN_KPIS

from . import grounding
from .cli import main
from .common import SIG_DIGITS, build_panel, config_of
from .markdown import render_markdown
from .models import SCHEMA_VERSION, Episode, IncidentInsight, Insights
from .schema import SCHEMA_PATH, schema_text, validate_json, write_schema
from .stage import DETAILS_FILE, build, forecast_ahead, run, split_details, to_json_dict

__all__ = [
    "DETAILS_FILE",
    "MAIN_KPIS",
    "grounding",
    "split_details",
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "SIG_DIGITS",
    "Episode",
    "IncidentInsight",
    "Insights",
    "build",
    "build_panel",
    "config_of",
    "forecast_ahead",
    "main",
    "render_markdown",
    "run",
    "schema_text",
    "to_json_dict",
    "validate_json",
    "write_schema",
]
