"""Reading a YAML config: duplicate keys refused, impossible dates kept as text for validation to
name, alias bombs and absurd nesting refused with one line (``shocklab.configio`` re-exports
``load_yaml`` and ``safe_load``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InputError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class _Loader(yaml.SafeLoader):
    """safe_load that rejects duplicate keys (plain YAML keeps the last one silently) and reads an
    impossible date (``2025-02-30``) as text, so validation reports it against its YAML path."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                if key in seen:
                    raise DuplicateKeyError(
                        None,
                        None,
                        f"duplicate key {key!r} (first at line {seen[key] + 1}; YAML would keep "
                        "only the last one)",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


class CyclicAliasError(yaml.constructor.ConstructorError):
    pass


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with duplicate keys rejected, impossible dates kept as text, and an
    alias inside the list or mapping it names (``seeds: &s [1, *s]``, a value that contains itself)
    refused: every walk over such a config (validation, hashing, date cleaning) recursed until
    Python's limit (exit 3)."""
    data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    where = _cycle(data)
    if where is not None:
        raise CyclicAliasError(
            None, None, f"{where or 'the top level'}: an alias (*name) refers to a list or mapping "
            "it is inside of (the value would contain itself)", None)
    return data


def _cycle(data: Any) -> str | None:
    """The dotted path of the first container that contains itself, or None (one pass over the
    distinct containers: an alias used twice is walked once)."""
    done: set[int] = set()
    path: list[int] = []          # ids of the containers being walked
    names: list[str] = []

    def walk(node: Any) -> str | None:
        if not isinstance(node, (dict, list)):
            return None
        key = id(node)
        if key in path:
            return ".".join(names)
        if key in done:
            return None
        path.append(key)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, child in items:
            names.append(str(k))
            found = walk(child)
            names.pop()
            if found is not None:
                return found
        path.pop()
        done.add(key)
        return None

    return walk(data)


def _not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    """Where a config file stops being UTF-8: the first bad byte, its line and column."""
    before = raw[:exc.start]
    line = before.count(b"\n") + 1
    column = exc.start - (before.rfind(b"\n") + 1) + 1
    return (f"not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}, column {column}); save the "
            "file as UTF-8")


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(what is wrong, `` at line L, column C`` or "") of a YAML parse error."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return getattr(exc, "problem", None) or str(exc).strip().splitlines()[0], where


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping. A path that is no regular file
    (a pipe: reading it blocked for ever; /dev/zero: read until memory ran out) or a file beyond
    ``MAX_CONFIG_BYTES`` is refused before a byte is read."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a config file")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: is not a regular file (a pipe, a device or a socket); save "
                         "the config to a file and pass that")
    try:
        if (size := path.stat().st_size) > MAX_CONFIG_BYTES:
            raise InputError(f"{path}: {size:,} bytes: too big for a config file "
                             f"(at most {MAX_CONFIG_BYTES:,})")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise InputError(f"{path}: cannot read config file ({exc.__class__.__name__})") from None
    try:
        # universal newlines, as read_text gave the parser
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:   # "cannot read config file (UnicodeDecodeError)" said
        raise InputError(f"{path}: {_not_utf8(raw, exc)}") from None   # neither what nor where
    try:
        data = safe_load(text) or {}
    except yaml.YAMLError as exc:
        problem, where = yaml_problem(exc)
        raise InputError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:   # brackets or indents thousands deep: was exit 3
        raise InputError(f"{path}: invalid YAML: nested too deep for a config") from None
    except ValueError as exc:   # an integer of more than 4300 digits (int() refuses it): exit 3
        raise InputError(f"{path}: invalid YAML: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    try:
        expanded, unique = _expanded_size(data)
    except RecursionError:
        raise InputError(f"{path}: invalid YAML: nested too deep for a config") from None
    if expanded > MAX_ALIAS_GROWTH * unique + 100_000:
        # aliases of aliases ("billion laughs"): 10 lines of 9 aliases each are 9^9 values; the
        # first walk over them (an experiment's date cleaning) ran for ever
        raise InputError(f"{path}: YAML aliases (*name) expand to {expanded:,} values from "
                         f"{unique:,} written: too many for a config")
    return data


MAX_CONFIG_BYTES = 16 * 2**20   # a config file beyond 16 MiB is not one (the shipped are < 40 KiB)
MAX_ALIAS_GROWTH = 100   # how many times its written values a config's aliases may expand to


def _expanded_size(data: Any) -> tuple[int, int]:
    """(values with every alias expanded, values as written): one pass over the distinct
    containers (an alias is the same object again), capped far above any config's size."""
    sizes: dict[int, int] = {}
    written = 0
    cap = 10**12

    def size(node: Any) -> int:
        nonlocal written
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key not in sizes:
            sizes[key] = 1   # a (non-YAML) cycle counts once
            children = list(node.values() if isinstance(node, dict) else node)
            written += 1 + sum(not isinstance(c, (dict, list)) for c in children)
            sizes[key] = min(cap, 1 + sum(size(c) for c in children))
        return sizes[key]

    return size(data), written
