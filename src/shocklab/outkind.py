"""What an existing directory is, read from its files: a ShockLab output of which kind (a data
set, a run, an experiment), or a folder of the user's. ``shocklab.atomic`` decides from it what
may be replaced, and the CLIs where an output may go.

A directory is ShockLab's when it carries the marker file (``.shocklab-output``), or — written
before markers existed — when it looks like one whole: its ``manifest.json`` / ``run.json`` says
ShockLab wrote it *and* it holds nothing but the files ShockLab writes there. A copied
``run.json`` among a user's files made the whole folder a replaceable output, and a user's
``cells/`` or ``worlds/`` folder made it an experiment's (``--fresh`` deleted them).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .errors import InputError

MARKER = ".shocklab-output"
KIND_NAMES = {
    "data": "data directory", "run": "run directory", "experiment": "experiment directory"
}
# the top-level names each kind writes: an unmarked directory holding anything else is not
# recognised as an older version's output of that kind
DATA_NAMES = frozenset({"manifest.json", "truth", "schemas"} | {
    f"{t}.{ext}" for t in ("orders", "order_items", "customers", "products", "website_traffic",
                           "marketing_calendar") for ext in ("csv", "parquet")})
RUN_NAMES = frozenset({
    "run.json", "scorecard.json", "incidents.json", "insights.json", "insights.md",
    "insights_details.json", "kpis_daily.csv", "detections.csv", "marketing_calendar.csv",
    "truth_scores.json", "customers", "plots", "tables"})
EXPERIMENT_NAMES = frozenset({
    "experiment.json", "cells", "worlds", "results.parquet", "leaderboard.csv",
    "leaderboard_train.csv", "summary.csv", "gate.json", "detectability.csv", "mde.csv", "plots"})
KIND_FILES = {"data": DATA_NAMES, "run": RUN_NAMES, "experiment": EXPERIMENT_NAMES}
WORLD_NAME = re.compile(r"^[0-9a-f]{16,64}$")  # a cached world: its scenario hash (tests: 16)
WORLD_AUX = re.compile(r"^\.[0-9a-f]{16,64}\.")  # its .HASH.code / .lock / .tmp-* / .bad-*


def read_marker(path: str | Path) -> dict:
    """The marker file's fields (``kind``, and ``owner`` from ``claim_dir``); {} when there is
    none or it cannot be read."""
    try:
        meta = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _names(path: Path) -> set[str] | None:
    try:
        return {p.name for p in path.iterdir()}
    except OSError:
        return None


def user_files(path: Path, kind: str, written: set[str] | None = None) -> list[str]:
    """The top-level names in the output ``path`` of ``kind`` that no such output writes (nor
    ``written``, what the output replacing it wrote): a user's notes put in a run directory,
    deleted with it by the next run (audit56 O2). Hidden names (temporaries, locks) are the
    output's own."""
    own = KIND_FILES.get(kind)
    names = _names(path) if own is not None else None
    if not names:
        return []
    return sorted(n for n in names - own - (written or set()) if not n.startswith("."))


def _own_hidden(name: str, own: frozenset[str]) -> bool:
    """``.results.parquet.tmp-PID``, ``.leaderboard.csv.XXXX``: a killed write's temporary."""
    return any(name.startswith(f".{n}.") for n in own)


def _meta(path: Path, name: str) -> dict:
    try:
        meta = json.loads((path / name).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _legacy_data(path: Path, names: set[str]) -> bool:
    meta = _meta(path, "manifest.json") if "manifest.json" in names else {}
    if not str(meta.get("generator", "")).startswith("shocklab"):
        return False
    files = meta.get("files")
    listed = {str(f).split("/")[0] for f in files} if isinstance(files, (dict, list)) else set()
    return names <= DATA_NAMES | listed


def _legacy_run(path: Path, names: set[str]) -> bool:
    return ("run.json" in names and names <= RUN_NAMES
            and str(_meta(path, "run.json").get("schema", "")).startswith("shocklab"))


def _experiment_shaped(path: Path, names: set[str]) -> bool:
    """An experiment directory whose marker names no kind (an older version's, or a first run
    stopped while it generated its first world, before the marker): only an experiment's files,
    ``cells/`` holding cell records only and ``worlds/`` cached worlds only."""
    extra = {n for n in names if n != MARKER and not _own_hidden(n, EXPERIMENT_NAMES)}
    if not extra & {"experiment.json", "cells", "worlds"} or not extra <= EXPERIMENT_NAMES:
        return False
    cells = _names(path / "cells") if "cells" in names else set()
    return (cells is not None
            and all(n.endswith(".json") or (n.startswith(".") and ".json." in n) for n in cells)
            and ("worlds" not in names or _only_worlds(path / "worlds")))


def _only_worlds(worlds: Path) -> bool:
    names = _names(worlds)
    return names is not None and all(
        (WORLD_NAME.match(n) and (worlds / n).is_dir()) or WORLD_AUX.match(n) for n in names)


def is_shocklab_output(path: str | Path) -> bool:
    """True for a directory ShockLab wrote (marker file, or an unmarked data/run directory of an
    earlier version holding only its own files) or an empty one: replacing it loses nothing the
    user made by hand."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / MARKER).is_file():
        return True
    names = _names(path)
    if names is None:
        return False
    return not names or _legacy_data(path, names) or _legacy_run(path, names)


def output_kind(path: str | Path) -> str | None:
    """What an existing ShockLab output holds: ``data`` (manifest.json of generate_data.py),
    ``run`` (run.json of run_analysis.py), ``experiment`` (the marker names one, or an unmarked
    experiment's files only); None for anything else — a user's folder with a copied run.json,
    or a ``cells/`` or ``worlds/`` folder of their own, included."""
    path = Path(path)
    names = _names(path)
    if not names:
        return None
    marked = MARKER in names and (path / MARKER).is_file()
    if "manifest.json" in names and (marked or _legacy_data(path, names)):
        return "data"
    if "run.json" in names and (marked or _legacy_run(path, names)):
        return "run"
    kind = read_marker(path).get("kind") if marked else None
    if kind in KIND_NAMES:
        return kind
    return "experiment" if _experiment_shaped(path, names) else None


def enclosing_output(target: str | Path) -> tuple[Path, str] | None:
    """The nearest directory above ``target`` that is a ShockLab output, and its kind name."""
    for parent in Path(target).resolve().parents:
        if not parent.is_dir():
            continue
        kind = output_kind(parent)
        if kind is not None or (parent / MARKER).is_file():
            return parent, KIND_NAMES.get(kind or "", "output")
    return None


def check_not_nested(target: str | Path, flag: str = "--out") -> None:
    """An output inside another ShockLab output is refused: replacing the outer one (its own
    rerun) or moving it aside took the inner one with it (``--out reports`` then the default
    ``reports/<id>``: the second run was deleted by the first one's rerun)."""
    outer = enclosing_output(target)
    if outer is not None:
        raise InputError(f"{flag} {target}: is inside the ShockLab {outer[1]} {outer[0]}; give a "
                         "path outside it (an output inside another is deleted with it when "
                         "that one is rewritten)")


def nested_output(path: str | Path) -> Path | None:
    """The first directory below ``path`` that is itself a ShockLab output (carries the
    marker); None when there is none. Links are not followed (replacing ``path`` unlinks them)."""
    for root, dirs, files in os.walk(path):
        if root != str(path) and MARKER in files:
            return Path(root)
        dirs.sort()
    return None
