"""Expansion of an experiment into settings (one set of overrides each) and cells (setting × seed).

Ids are content hashes, so they do not depend on the order of the grid or on which other
settings exist: a cell computed by an earlier, smaller sweep is recognised by a later one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shocklab.configio import apply_overrides
from shocklab.hashing import sha256_json

from .config import ExperimentConfig, override_text


@dataclass(frozen=True)
class Setting:
    """One point of the sweep. ``overrides`` are dotted keys prefixed ``scenario.``/``analysis.``;
    ``params`` are what tables and plots show for it (the overrides themselves for a grid; event
    type, duration and magnitude for detectability)."""

    setting_id: str
    overrides: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    cell_id: str
    setting: Setting
    seed: int


def setting_id(overrides: dict[str, Any]) -> str:
    return "s" + sha256_json(overrides)[:10]


def make_setting(overrides: dict[str, Any], params: dict[str, Any] | None = None) -> Setting:
    return Setting(
        setting_id(overrides), dict(overrides), dict(overrides if params is None else params)
    )


def grid_settings(cfg: ExperimentConfig) -> list[Setting]:
    """``settings`` (default: one empty set) × the cartesian product of ``grid``, in file order.
    A grid key that also appears in a ``settings`` entry takes the grid's value."""
    keys = list(cfg.grid)
    base_list = cfg.settings or [{}]
    out: list[Setting] = []
    seen: set[str] = set()
    for base in base_list:
        for values in itertools.product(*(cfg.grid[k] for k in keys)):
            overrides = {**base, **dict(zip(keys, values, strict=True))}
            s = make_setting(overrides)
            same = setting_key(overrides)
            if same not in seen:  # duplicates in a list would only repeat work
                seen.add(same)
                out.append(s)
    return out


def setting_key(overrides: dict[str, Any]) -> str:
    """What makes two settings one: their overrides with numbers read alike (``3`` and ``3.0``),
    hashed (ids hash the overrides as written, so ``setting_id`` tells them apart)."""
    return sha256_json(_numbers_as_floats(overrides))


def _numbers_as_floats(value: Any) -> Any:
    """``3`` and ``3.0`` are one setting (the config models read both as the same number): the
    first one written is kept (``[3, 3.0]`` ran the same cells twice, two leaderboard rows)."""
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def short_names(keys: Iterable[str]) -> dict[str, str]:
    """Each dotted key's shortest ending that no other of ``keys`` shares: ``threshold``, or
    ``rolling_zscore.window`` and ``isolation_forest.window`` when both are swept (both read
    ``window=14`` in the summary and the plots' legends)."""
    keys = list(dict.fromkeys(keys))
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(o != key and (o == tail or o.endswith("." + tail)) for o in keys):
                break
        out[key] = tail
    return out


def cells(settings: list[Setting], seeds: list[int]) -> list[Cell]:
    return [Cell(f"{s.setting_id}-seed{seed}", s, seed) for s in settings for seed in seeds]


def split_overrides(overrides: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Dotted overrides -> (scenario ``key=value`` list, analysis ``key=value`` list)."""
    scen, ana = [], []
    for key, value in overrides.items():
        target, _, rest = key.partition(".")
        (scen if target == "scenario" else ana).append(override_text(rest, value))
    return scen, ana


def named_overrides(data: dict[str, Any], items: list[str], where: str, prefix: str = ""
                    ) -> dict[str, Any]:
    """``apply_overrides(data, items, merge=True)``, an error naming ``where`` the override came
    from (an experiment file's grid, settings or *_overrides) and its key (``prefix`` + key):
    it named a '--set' never given."""
    return apply_overrides(data, items, merge=True,
                           label=lambda item: f"{where}: {prefix}{item.partition('=')[0]}")


def resolve_cell(cell: Cell, scenario: dict[str, Any], analysis: dict[str, Any] | None,
                 source: str = "experiment") -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The scenario (with the cell's seed) and analysis mappings one cell runs with. A mapping
    value merges into the mapping it names (``shocklab.configio.layered``), as in the file's
    ``*_overrides``: ``analysis.consensus: [{min_votes: 3}]`` keeps the rest of the consensus.
    ``source``: the experiment file, named by an override that cannot apply."""
    scen_o, ana_o = split_overrides(cell.setting.overrides)
    where = f"{source}: grid/settings"
    scen = named_overrides(scenario, scen_o, where, "scenario.")
    scen["seed"] = cell.seed
    if ana_o:
        from analytics.config import new_name_override  # retrain_every -> refit_every

        ana = named_overrides(analysis or {}, [new_name_override(o) for o in ana_o], where,
                              "analysis.")
    else:
        ana = None if analysis is None else apply_overrides(analysis, [])
    return scen, ana
