"""What an episode's title quotes when its own figures would mislead (``incident_change``):
an incident's own change instead of the episode's whole-day, category-wide or contrary figure."""

from __future__ import annotations

from shocklab.catalogue import PRICE_KPI, PRODUCT_DIMENSION

from .common import _slice_label, one_decimal
from .models import Episode, IncidentChange, IncidentInsight
from .narrative import _product_only, _scope_label, _title_change


def _against(ep: Episode, items: list[IncidentInsight]) -> bool:
    """The change the title would quote moved against every incident on its KPI (all one way):
    e.g. up incidents in a slice with no baseline revenue, titled by the store's fall."""
    v, _ = _title_change(ep)
    dirs = {i.direction for i in items if i.kpi == ep.primary_kpi}
    return v is not None and one_decimal(v) != 0 and len(dirs) == 1 and (v > 0) != (
        dirs == {"up"})


def _incident_change(ep: Episode, items: list[IncidentInsight],
                     why: str = "sub_daily") -> IncidentChange | None:
    """The incident change the title quotes, the largest (|magnitude_pct|; ties: the earlier)
    of the episode's incidents on its primary KPI; None without one. ``sub_daily``: in the slice
    the title names (overall unless the incidents name one) — the episode's figures are whole
    days, where a 3-hour outage reads -7 % and an up incident can read down. ``direction``
    (``_against``): in any slice, moving its incident's way."""
    where = _scope_label(ep)
    if where is None or (ep.scope_changes or {}).get(ep.primary_kpi) is None:
        where = "overall"
    cands = [i for i in items if i.kpi == ep.primary_kpi and i.magnitude_pct is not None
             and (why != "sub_daily" or _slice_label(i.dimension, i.segment) == where)
             and (why != "direction" or (i.magnitude_pct > 0) == (i.direction == "up"))]
    if not cands:
        return None
    return _largest(cands, why)


def _product_change(ep: Episode, items: list[IncidentInsight]) -> IncidentChange | None:
    """A product-only episode: the largest product move (ties: the earlier), which the title
    quotes — its list price where it has price incidents, else its orders; None without one.
    The episode is measured on its category (AOV, revenue), which one product moves far less and
    may move the other way: a product's price -80 % in a category whose AOV rose 12 %, a
    product's stockout titled "revenue in category beauty up +7.2%"."""
    if not _product_only(ep):
        return None
    for kpi, why in ((PRICE_KPI, "product_price"), ("orders", "product_orders")):
        cands = [i for i in items if i.kpi == kpi and i.dimension == PRODUCT_DIMENSION
                 and i.magnitude_pct is not None]
        if cands:
            # a product's orders over the days they departed (insights.product_span): the
            # watcher's 3- and 7-day windows flag on for days after a short stockout
            return _largest(cands, why, measured=kpi == "orders")
    return None


def _largest(cands: list[IncidentInsight], why: str, measured: bool = False) -> IncidentChange:
    """The change of the largest of ``cands`` (|magnitude_pct|; ties: the earlier); with
    ``measured``, an incident's measured change over its measured days where it has them."""
    def change(i: IncidentInsight) -> tuple[float, object, object]:
        if measured and i.measured_change_pct is not None and i.measured_start is not None:
            return i.measured_change_pct, i.measured_start, i.measured_end
        return i.magnitude_pct or 0.0, i.start, i.end

    i = max(cands, key=lambda i: abs(change(i)[0]))
    pct, start, end = change(i)
    return IncidentChange(why=why, incident_id=i.incident_id, kpi=i.kpi,
                          slice=_slice_label(i.dimension, i.segment),
                          change_pct=pct, start=start, end=end,
                          start_time=i.start_time, end_time=i.end_time)
