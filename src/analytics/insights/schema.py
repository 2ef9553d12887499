"""The committed JSON Schema of insights.json: generate, write and validate against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shocklab.atomic import atomic_write_text
from shocklab.errors import InputError
from shocklab.hashing import canonical_json

from .models import Insights

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "insights.schema.json"


def schema_text() -> str:
    """The JSON Schema of ``Insights`` as committed in schemas/insights.schema.json."""
    schema = Insights.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://shocklab.dev/schemas/insights.schema.json"
    return canonical_json(schema)


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    atomic_write_text(path, schema_text())
    return Path(path)


def validate_json(doc: dict[str, Any]) -> None:
    """Validate against the committed schema (the model's own when the file is absent)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) if SCHEMA_PATH.exists() \
        else json.loads(schema_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    err = next(iter(sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        raise InputError(
            f"insights.json does not match schemas/insights.schema.json at {where}: {err.message}"
        )
