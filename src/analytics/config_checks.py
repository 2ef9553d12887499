"""Checks of each detector's own lists (the config audit of session 46): a name the analysis
never produces was accepted and the detector watched nothing, run ok, exit 0
(``dimensions: [foo]``, ``log_kpis: [foo]``, ``product_watch.dimensions: [channel]``, a
``window_calibration`` of a window the detector does not score).

``check_detector_lists`` runs at load (``AnalysisConfig._check_names``): what holds whatever the
input. ``check_store_names`` runs once the input is known to be store data (``--data``,
``--transactions``): a ``--kpis`` file's series carry the file's own dimension and KPI names, so
there a detector's ``dimensions`` / ``log_kpis`` may name anything (a name no series has is
warned about by ``pipeline.detect_one``). ``require_voters``: a config whose consensus can report
nothing (no voter that can alarm on this input) is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shocklab.catalogue import KPI_NAMES, OVERALL_DIMENSION, PRODUCT_DIMENSION, PRODUCT_KPIS
from shocklab.errors import InputError

from .detectors import REGISTRY

if TYPE_CHECKING:
    from .config import AnalysisConfig

# the product watcher's own series: each product's orders and price, and the list-price indexes
# of each category and of the store (KPI price on category and overall)
PRODUCT_WATCH_DIMENSIONS = (PRODUCT_DIMENSION, "category", OVERALL_DIMENSION)


def _names(where: str, given: list[str] | None, allowed: Any, what: str) -> str | None:
    for name in given or []:
        if name not in allowed:
            return f"{where}: {name!r} is not {what} ({', '.join(map(str, allowed)) or 'none'})"
    return None


def check_detector_lists(kpis: list[str], detectors: dict[str, Any]) -> None:
    """``detectors.<name>.kpis`` (the product watcher: its own series), the product watcher's
    ``dimensions`` and ``window_calibration`` keys name only what the detector can be given;
    ValueError naming the key, the name and what is allowed."""
    for name, det in detectors.items():
        where = f"detectors.{name}"
        if REGISTRY[det.type].only_products:   # product_watch: store data only, its own series
            problem = (_names(f"{where}.kpis", det.kpis, PRODUCT_KPIS,
                              "a series the product watcher judges")
                       or _names(f"{where}.dimensions", det.dimensions, PRODUCT_WATCH_DIMENSIONS,
                                 "a dimension the product watcher judges"))
        else:
            problem = _names(f"{where}.kpis", det.kpis, kpis, "an analysed KPI")
        windows = getattr(det, "windows", None)
        calibrations = getattr(det, "window_calibration", None) or {}
        shipped = type(det).model_fields["window_calibration"].default_factory() \
            if calibrations else {}
        for k in calibrations:
            if problem is None and windows is not None and k not in windows and k not in shipped:
                problem = (f"{where}.window_calibration.{k}: {k} is not one of its windows "
                           f"({', '.join(map(str, windows)) or 'none'})")
        if problem:
            raise ValueError(problem)


def check_store_names(cfg: Any) -> None:
    """On store data: each enabled detector's ``dimensions`` are analysed dimensions and its
    ``log_kpis`` are KPIs (InputError naming the key, the name and what is allowed)."""
    for name, det in cfg.detectors.items():
        if not det.enabled or REGISTRY[det.type].only_products:
            continue
        problem = _names(f"detectors.{name}.dimensions", det.dimensions, cfg.dimensions,
                         "an analysed dimension (`dimensions`)")
        if problem:
            raise InputError(f"{problem}: the detector would watch nothing there")
        problem = _names(f"detectors.{name}.log_kpis", getattr(det, "log_kpis", None),
                         KPI_NAMES, "a KPI")
        if problem:
            raise InputError(f"{problem}: no series of store data is named so")


def alarming_voters(cfg: AnalysisConfig, products: bool = True) -> list[str]:
    """The enabled voters that can raise a consensus incident on this input: a product-only voter
    (product_watch) only where product series are watched (store data, ``product`` in
    ``dimensions``; never on ``--kpis`` input, ``products`` False)."""
    watched = products and PRODUCT_DIMENSION in cfg.dimensions
    return [n for n in cfg.voting_detectors()
            if watched or not REGISTRY[cfg.detectors[n].type].only_products]


def require_voters(cfg: AnalysisConfig, where: str = "--detectors", products: bool = True) -> None:
    """A config enabling no voting detector that can alarm on this input (``detectors={}``, every
    voter off, or only product_watch where no product series is watched) is an InputError naming
    the voters that are off: its consensus said "nothing happened" whatever the data (exit 0).
    Naming the detectors (``where``) runs the oracle alone: callers skip this then."""
    if alarming_voters(cfg, products):
        return
    off = [n for n, d in cfg.detectors.items()
           if REGISTRY[d.type].votes and not (d.enabled and REGISTRY[d.type].only_products)]
    idle = [n for n in cfg.voting_detectors() if n not in off]   # on, but no product series here
    cli = where[:2] == "--"
    alone = f"{where} oracle" if cli else f'"{where}": ["oracle"]'
    raise InputError("detectors: " + (
        f"every voting detector is off ({', '.join(off)}: enabled: false)" if off else
        f"no voting detector is configured (detectors: {', '.join(cfg.detectors) or 'none'})")
        + (f"; {', '.join(idle)} watches product series only, and this input has none watched"
           if idle else "")
        + ", so the consensus can report no incident whatever the data: " + (
            f"enable one ({'--set' if cli else 'overrides'} detectors.{off[0]}.enabled=true)"
            if off else "configure one") + f"; {alone} runs the oracle alone")
