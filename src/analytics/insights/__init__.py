"""Insights: an LLM-ready ``insights.json`` (validated against ``schemas/insights.schema.json``)
and ``insights.md`` (the same content as a compact brief) explaining a run.

Sections: run · summary (totals, week-over-week and month-over-month changes with drivers) ·
channels (underperformers against their own trailing baseline) · incidents (one per consensus
incident: drivers, signature, planned-event overlap, narrative, action, matched event) · episodes
(overlapping incidents read together) · forecast · seasonality · customers (free-form, filled by
the customers package).

Identical inputs give identical bytes: no wall-clock fields, sorted keys, floats rounded to
``SIG_DIGITS`` significant digits. Insights never read ``truth/`` (``matched_event_id`` is set by
scoring on the incident).

The package, by concern (each imports only those above it, so there are no loops):

- ``models``    the pydantic output models (the schema is generated from ``Insights``)
- ``common``    number cleaning, config accessor, slice labels, wrappers over ``drivers``
- ``schema``    generate / write / validate the committed JSON Schema
- ``narrative`` text rendered from an incident's or episode's own fields; actions
- ``sections``  run, summary, channels, forecast, seasonality
- ``episodes``  incidents explained, grouped into episodes and measured
- ``markdown``  insights.md
- ``stage``     ``build`` (pure) and ``run`` (the pipeline stage that writes the files)
- ``cli``       ``python -m analytics.insights``

Regenerate the committed schema after changing a model::

    python -m analytics.insights --write-schema
"""

from __future__ import annotations

from .cli import main
from .common import MAIN_KPIS, SIG_DIGITS, build_panel, config_of
from .markdown import render_markdown
from .models import SCHEMA_VERSION, Episode, IncidentInsight, Insights
from .schema import SCHEMA_PATH, schema_text, validate_json, write_schema
from .stage import build, run, to_json_dict

__all__ = ["MAIN_KPIS", "SCHEMA_PATH", "SCHEMA_VERSION", "SIG_DIGITS", "Episode", "IncidentInsight", "Insights",
           "build", "build_panel", "config_of", "main", "render_markdown", "run", "schema_text", "to_json_dict",
           "validate_json", "write_schema"]
