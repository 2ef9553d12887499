"""YAML config loading (the reader: ``shocklab.yamlio``), ``--set dotted.key=value`` overrides and
pydantic validation whose errors name the file and the YAML path (``events[2].scope.channel: …``)
in one line."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError, InputError
from .yamlio import DuplicateKeyError, load_yaml, safe_load, yaml_problem  # noqa: F401 - callers import them here

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("shocklab.configio")

# the repository's config/ folder: the CLIs' default config files are found here from any working
# directory (an explicit relative --config stays relative to the working directory)
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def shipped_config(name: str) -> Path:
    """``config/<name>`` of this checkout, a CLI's default ``--config``, found from any working
    directory. Named relative to the working directory when it lies under it
    (``config/simulation.yaml`` from the repository root), as messages always named it."""
    path = CONFIG_DIR / name
    try:
        return path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def format_path(loc: tuple[Any, ...]) -> str:
    """('events', 2, 'scope', 'channel') -> 'events[2].scope.channel'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def _branch_label(part: Any, node: Any) -> bool:
    """A union member's name that pydantic puts in a location (``list[constrained-int]``,
    ``SeedRange``): not a key of the user's mapping, and not written like one."""
    return (
        isinstance(part, str)
        and not (isinstance(node, dict) and part in node)
        and ("[" in part or part[:1].isupper())
    )


def _child(node: Any, part: Any) -> Any:
    """The input's value under one location part (None where the input has none)."""
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _shape_mismatch(e: dict, data: Any) -> bool:
    """A union member's complaint that the input does not have its shape ("Input should be a
    valid list" about the mapping member): not what is wrong with the input."""
    if not str(e["type"]).endswith("_type"):
        return False
    node = data
    loc = tuple(e["loc"])
    for i, part in enumerate(loc):
        if _branch_label(part, node):
            # about the member as a whole; deeper (``seeds.SeedRange.start: valid integer``)
            # it is what is wrong inside the member the input has the shape of
            return i == len(loc) - 1
        node = _child(node, part)
    return False


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop the discriminator tags pydantic inserts into locations of tagged unions
    (``events.2.flash_sale.magnitude`` -> ``events[2].magnitude``) by walking the input."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node \
                and node.get("type") == part:
            continue  # the union tag, not a key of the user's mapping
        if _branch_label(part, node):
            continue  # a union member's name (list[...], a model class), not a key
        if (
            isinstance(node, dict)
            and part not in node
            and isinstance(part, str)
            and (
                "function-after" in part
                or "function-before" in part
                or part.startswith("tagged-union")
            )
        ):
            continue
        out.append(part)
        node = _child(node, part)
    return tuple(out)


def _short_input(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "multiple_of", "finite_number")


def _non_finite(value: Any) -> bool:
    """A NaN or ±inf number, or text a number field reads as one ('nan', '-inf', 'Infinity')."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, str)):
        try:
            return not math.isfinite(float(value))
        except (ValueError, OverflowError):
            return False
    return False


def _first_non_finite(node: Any, loc: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], Any] | None:
    """Where a validated config holds a NaN or ±inf number (a field without bounds took
    ``--set key=nan`` silently), and the value."""
    if isinstance(node, float):
        return None if math.isfinite(node) else (loc, node)
    if isinstance(node, BaseModel):
        items: Any = ((k, getattr(node, k)) for k in type(node).model_fields)
    elif isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return None
    for key, child in items:
        hit = _first_non_finite(child, (*loc, key))
        if hit is not None:
            return hit
    return None


def _field_keys(name: str, fld: Any) -> list[Any]:
    """The keys a model field is read from: its name and its alias choices (``retrain_every``)."""
    alias = fld.validation_alias
    choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
    return [name, *(c for c in choices if isinstance(c, str))]


def _first_bool_number(node: Any, raw: Any, loc: tuple[Any, ...] = ()
                       ) -> tuple[tuple[Any, ...], Any] | None:
    """Where a validated config holds a number that was written as a YAML boolean: pydantic
    reads ``on``/``yes``/``true`` as 1 and ``off``/``no``/``false`` as 0 in a number field
    (``--set sensitivity=on`` ran at sensitivity 1.0, ``duration_days: on`` one day)."""
    if isinstance(raw, bool):
        hit = isinstance(node, (int, float)) and not isinstance(node, bool)
        return (loc, raw) if hit else None
    if isinstance(node, BaseModel) and isinstance(raw, dict):
        for name, fld in type(node).model_fields.items():
            key = next((k for k in _field_keys(name, fld) if k in raw), None)
            found = None if key is None else _first_bool_number(
                getattr(node, name), raw[key], (*loc, key))
            if found is not None:
                return found
    elif isinstance(node, dict) and isinstance(raw, dict):
        by_text = {str(k): v for k, v in node.items()}
        for key, value in raw.items():
            found = _first_bool_number(by_text[str(key)], value, (*loc, key)) \
                if str(key) in by_text else None
            if found is not None:
                return found
    elif isinstance(node, (list, tuple)) and isinstance(raw, list):
        for i, (child, value) in enumerate(zip(node, raw, strict=False)):
            found = _first_bool_number(child, value, (*loc, i))
            if found is not None:
                return found
    return None


def format_validation_error(exc: ValidationError, data: Any, source: str) -> str:
    return f"{source}: {validation_problem(exc, data)[1]}"


def validation_problem(exc: ValidationError, data: Any) -> tuple[tuple[Any, ...], str]:
    """The first error's key path and its one-line message (``loc: what``, no source)."""
    errors = exc.errors(include_url=False)
    # within a union (a list or a mapping) the member whose shape the input has says what is
    # wrong; the other member's complaint about the shape is not a second problem
    errors = [e for e in errors if not _shape_mismatch(e, data)] or errors[:1]
    first = errors[0]
    where = _clean_loc(tuple(first["loc"]), data)
    loc = format_path(where)
    msg = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first["type"] in _BOUND_ERRORS and _non_finite(first.get("input")):
        # 'nan' failed "≤ 90" (every comparison with NaN is false): not what is wrong with it
        msg = "must be a finite number"
    if first["type"] == "union_tag_not_found":   # "Unable to extract tag using discriminator"
        tag = (first.get("ctx") or {}).get("discriminator", "'type'")
        msg = f"has no {tag} key" + (
            f" (a misspelt name? {where[-1]!r} is a new entry, and a new one needs its {tag})"
            if where and isinstance(where[-1], str) else "")
    if first["type"] == "list_type" and _int_keyed(first.get("input")):
        # '--set a.kpis.0=x' where the config holds no list there built {0: 'x'}: "Input should
        # be a valid list" did not say why (hostile-input audit, 2026-12-05)
        msg = ("a list is expected here, and an index was set where the config holds no list "
               "(--set can index only a list the config spells out; give the whole list, "
               "e.g. --set key=[a, b])")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (check spelling; schemas/*.schema.json list every key)"
    elif first["type"] not in ("value_error", "assertion_error") and "input" in first \
            and not isinstance(first["input"], (dict, list)):
        msg = f"{msg} (got {_short_input(first['input'])})"
    more = (
        f" (+{len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    if not first["loc"]:  # a whole-file rule (its message names the keys): no '<root>' prefix
        return (), f"{msg}{more}"
    return where, f"{loc}: {msg}{more}"


def _int_keyed(value: Any) -> bool:
    """A mapping keyed by list indices only (what ``--set x.0=…`` builds where x is missing)."""
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, int) and not isinstance(k, bool) for k in value)


def validate(model: type[M], data: dict[str, Any], source: str) -> M:
    """Validate ``data`` into ``model``; on failure raise ConfigError (an InputError) with one
    readable line."""
    try:
        cfg = model.model_validate(data)
    except ValidationError as exc:
        loc, detail = validation_problem(exc, data)
        raise ConfigError(f"{source}: {detail}", loc, detail) from None
    hit = _first_non_finite(cfg)
    if hit is not None:
        loc, value = hit
        node: Any = data   # the value as written ('nan' from --set), where the key is found
        for part in loc:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = value
                break
        detail = f"{format_path(loc)}: must be a finite number (got {_short_input(node)})"
        raise ConfigError(f"{source}: {detail}", loc, detail)
    hit = _first_bool_number(cfg, data)
    if hit is not None:
        loc, value = hit
        detail = (f"{format_path(loc)}: must be a number, not a yes/no (got {value!r}: YAML "
                  "reads on, off, yes, no, true and false as booleans)")
        raise ConfigError(f"{source}: {detail}", loc, detail)
    return cfg


def _parse_key(key: str, label: str | None = None) -> list[str | int]:
    parts: list[str | int] = []
    for raw in key.replace("[", ".").replace("]", "").split("."):
        if raw == "":
            raise InputError(f"{label or f'--set {key!r}'}: empty key segment")
        parts.append(int(raw) if raw.lstrip("-").isdigit() else raw)
    return parts


def override_at(loc: tuple[Any, ...], overrides: list[str] | None) -> str | None:
    """The last of ``overrides`` (``dotted.key=value``) that set the value at ``loc`` (a
    ``ConfigError``'s), a key inside it or a key above it; None when none did."""
    want = [str(p) for p in loc]
    for item in reversed(overrides or []):
        try:
            parts = [str(p) for p in _parse_key(item.partition("=")[0].strip())]
        except InputError:
            continue
        n = min(len(parts), len(want))
        if n and parts[:n] == want[:n]:
            return item
    return None


# a path of ``dotted``: names (str) and ``int`` for any list index, e.g. ("settings", int)
DottedPath = tuple[Any, ...]


def _at_dotted(at: list[str | int], dotted: tuple[DottedPath, ...]) -> bool:
    """Whether ``at`` (the key path walked so far) is one of the mappings ``dotted`` names."""
    def same(part: str | int, want: Any) -> bool:
        return isinstance(part, int) if want is int else part == want

    return any(len(d) == len(at) and all(map(same, at, d)) for d in dotted)


def _join_dotted_keys(data: Any, parts: list[str | int],
                      dotted: tuple[DottedPath, ...] = ()) -> list[str | int]:
    """``parts`` with each run that names one existing key holding dots joined into it (the
    longest): an experiment's ``grid`` and ``*_overrides`` are keyed by dotted paths, and
    ``--set analysis_overrides.detectors.x.enabled=true`` made a nested mapping beside the
    file's ``detectors.x.enabled`` key — which then replaced the whole ``detectors`` section.
    Inside a mapping ``dotted`` names, a key that no existing key starts is new: the rest of the
    path is that one key (a nested ``detectors`` mapping there replaced the section too)."""
    out: list[str | int] = []
    node, i = data, 0
    while i < len(parts):
        j = i + 1
        if isinstance(node, dict):
            j = next((k for k in range(len(parts), i + 1, -1)
                      if ".".join(map(str, parts[i:k])) in node), i + 1)
            if j == i + 1 and parts[i] not in node and _at_dotted(out, dotted):
                j = len(parts)
        elif node is None and _at_dotted(out, dotted):
            j = len(parts)
        part = ".".join(map(str, parts[i:j])) if j > i + 1 else parts[i]
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            node = node[part]
        else:
            node = None
        i = j
    return out


def _check_index(label: str, node: list[Any], part: str | int, at: list[str | int]) -> None:
    """A name where the config holds a list ('--set seeds.count=2' with 'seeds: [1, 2]') said
    "index 'count' out of range". ``label`` names the override (``apply_overrides``)."""
    if not isinstance(part, int):
        raise InputError(f"{label}: {format_path(tuple(at))} is a list of {len(node)}, "
                         f"not a mapping: {part!r} is no key of it (address an item by number, "
                         f"or set the whole value)")


def layered(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: a mapping in both merges key by key (recursively) unless the
    two name different ``type``s (a detector of another type replaces the base's); anything else
    in ``over`` (a value, a list, a mapping where ``base`` has none) replaces. Keys keep ``base``'s
    order, new ones follow."""
    out = dict(base)
    for k, v in over.items():
        b = out.get(k)
        if (isinstance(b, dict) and isinstance(v, dict)
                and ("type" not in v or v.get("type") == b.get("type"))):
            out[k] = layered(b, v)
        else:
            out[k] = v
    return out


def _warn_if_replaced(key: str, old: Any, value: Any) -> None:
    """``--set 'consensus={min_votes: 3}'`` replaces the mapping it names whole (a --config file
    and an experiment's overrides merge): a setting it leaves out takes the code's default, not the
    configured one (there: a plain vote instead of combined evidence), and an entry it leaves out
    (a detector, channel, country, grid axis) is gone; the run did not say so."""
    if not (isinstance(old, dict) and isinstance(value, dict)):
        return
    lost = sorted(str(k) for k in old if k not in value)
    if lost:
        more = f" and {len(lost) - 6} more" if len(lost) > 6 else ""
        log.warning("--set %s={…} replaces the whole mapping: it leaves out %s%s (a setting left "
                    "out takes the code's default, an entry such as a detector, channel or "
                    "country is dropped; change one key with --set %s.<key>=value)",
                    key, ", ".join(lost[:6]), more, key)


def first_repeat(names: Iterable[Any]) -> Any | None:
    """The first name a list holds twice (a copy-paste slip in a config's list), else None."""
    seen: set[Any] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def set_label(item: str) -> str:
    """How an error names an override: the command line's ``--set 'key=value'``."""
    return f"--set {item!r}"


def apply_overrides(data: dict[str, Any], overrides: list[str] | None,
                    dotted: tuple[DottedPath, ...] = (), merge: bool = False,
                    label: Callable[[str], str] = set_label) -> dict[str, Any]:
    """Apply ``dotted.key=value`` strings (values parsed as YAML scalars/lists) to a copy of data.

    List elements are addressed by index: ``events.0.magnitude=0.3`` or ``events[0].magnitude=0.3``.
    ``dotted``: paths of mappings keyed by dotted paths (an experiment's ``grid``, ``int`` for
    any list index), where the rest of an override's key is one key (``_join_dotted_keys``).
    ``merge``: a mapping set where the data holds one is ``layered`` over it (an experiment's
    ``consensus: {min_votes: 3}``) instead of replacing it (``--set consensus={…}``).
    ``label(item)`` names an override in an error (an experiment file's grid names its own key).
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        name = label(item)
        if not sep or not key.strip():
            raise InputError(f"{name}: expected dotted.key=value")
        try:
            value = safe_load(raw) if raw.strip() else None
        except (yaml.YAMLError, ValueError, RecursionError) as exc:
            if raw.strip()[:1] in ("{", "["):   # meant as a mapping or list: say what is wrong
                what = "mapping" if raw.strip()[0] == "{" else "list"
                why = ("nested too deep" if isinstance(exc, RecursionError)
                       else "".join(yaml_problem(exc)) if isinstance(exc, yaml.YAMLError)
                       else str(exc))
                raise InputError(f"{name}: not a valid YAML {what} ({why})") from None
            value = raw
        parts = _join_dotted_keys(out, _parse_key(key.strip(), label(key.strip())), dotted)
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                _check_index(name, node, part, parts[:i])
                if not -len(node) <= part < len(node):
                    raise InputError(
                        f"{name}: index {part!r} out of range at "
                        f"{format_path(tuple(parts[:i]))}"
                    )
                node = node[part]
            elif isinstance(node, dict):
                if part not in node or node[part] is None:
                    # a mapping even before a number: a new list has no item to address
                    # ('window_calibration.3.tail_gain=1.3' said "index 3 out of range" of the
                    # mapping by window the file did not spell out; the model reads {3: …})
                    node[part] = {}
                node = node[part]
            else:
                raise InputError(
                    f"{name}: {format_path(tuple(parts[:i]))} is not a mapping or list"
                )
        last = parts[-1]
        if isinstance(node, list):
            _check_index(name, node, last, parts[:-1])
            if not -len(node) <= last < len(node):
                raise InputError(f"{name}: index {last!r} out of range")
            node[last] = value
        elif isinstance(node, dict):
            if not merge:
                _warn_if_replaced(key.strip(), node.get(last), value)
            # layered's rule for the one key (a detector of another type replaces)
            node[last] = layered(node, {last: value})[last] if merge else value
        else:
            raise InputError(
                f"{name}: {format_path(tuple(parts[:-1]))} is not a mapping or list"
            )
    return out


def load_config(
    model: type[M], path: str | Path, overrides: list[str] | None = None,
    read: Callable[[str | Path], dict[str, Any]] = load_yaml,
    label: Callable[[str], str] = set_label,
) -> tuple[M, dict[str, Any]]:
    """Load YAML (``read``: the file's mapping, e.g. layered over a shipped one), apply overrides
    (``label``: how an error names one, ``apply_overrides``), validate. Returns the model and the
    raw (overridden) mapping."""
    raw = apply_overrides(read(path), overrides, label=label)
    source = str(path) + (" (with --set overrides)" if overrides else "")
    return validate(model, raw, source), raw


def export_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON Schema for editors (``# yaml-language-server: $schema=…``)."""
    return model.model_json_schema()
