"""Why a diagnosis fits, in words the episode's own changes show (``_reason``), and the
products the product watcher flagged in it (``_products``); used by ``narrative``."""

from __future__ import annotations

from shocklab.catalogue import PRODUCT_DIMENSION

from .common import _slice_label
from .diagnosis import EPS, read_features
from .models import Episode

_PRODUCTS_NAMED = 3  # an episode's products named in its title and action; more: "and others"


def _products(ep: Episode) -> str:
    """The products the product watcher flagged in the episode (its incidents' slices), as
    ``product 12, product 7``; empty when none."""
    names = [s for s in ep.slices if s.startswith(f"{PRODUCT_DIMENSION} ")]
    text = ", ".join(names[:_PRODUCTS_NAMED])
    return text + (" and others" if len(names) > _PRODUCTS_NAMED else "")



_REASON = {
    "site_outage": "visits were lost store-wide while buyers kept converting, so visitors could "
                   "not reach the shop",
    "channel_outage": "the visits lost came from one acquisition channel",
    "level_shift": "the new level stayed after the episode",
    "bot_traffic": "extra visits did not buy, so orders stayed level",
    "tracking_fault": (
        "visits vanished from the data but orders did not, so a tag or feed lost them"
    ),
    "payment_failure": "visitors arrived but fewer of them completed a purchase",
    "churn_wave": "the loss came through returning customers, not new ones",
    "stockout": "fewer orders and smaller baskets, confined to a category",
    "pricing_error": "basket value moved with orders level, as when prices are wrong",
    "flash_sale": "more visitors and more of them buying, with cheaper baskets",
    "fraud_orders": "bigger baskets with visits level, as when stolen cards buy in bulk",
    "planned_event": "it overlaps a planned marketing-calendar day",
    "undetermined": "no funnel pattern stands out",
}


# the reasons that speak of visitors, for input without sessions (a transactions file): what the
# orders show, and that the visits are unknown
_REASON_NO_VISITS = {
    "site_outage": "orders fell across the board; the input has no visitor data, so lost visits "
                   "cannot be told from a checkout failure",
    "channel_outage": "the orders lost came from one acquisition channel; the input has no "
                      "visitor data",
    "payment_failure": "fewer orders were completed; the input has no visitor data, so a checkout "
                       "failure cannot be told from lost visits",
    "bot_traffic": "the input has no visitor data to show extra visits",
    "tracking_fault": "the input has no visitor data to show visits vanishing",
    "flash_sale": "more orders with cheaper baskets; the input has no visitor data",
    "fraud_orders": "bigger baskets with orders not falling, as when stolen cards buy in bulk; "
                    "the input has no visitor data",
}
_REASON_PRODUCT = {
    "stockout": "the product watcher saw a product's orders collapse against its category's",
    "pricing_error": "the product watcher saw a list price move against its own recent price",
}


def _product_only(ep: Episode) -> bool:
    """An episode of the product watcher's product incidents alone (a product's own stockout or
    price), not a store episode they were folded into."""
    return bool(ep.slices) and all(s.startswith(f"{PRODUCT_DIMENSION} ") for s in ep.slices)


def _reason(ep: Episode) -> str:
    """Why the diagnosis fits, in words that hold for the episode: no visitor facts when the
    input has no sessions, the product watcher's finding for a product episode, no "store-wide"
    for an outage its top slice confines, and each funnel clause only where the changes the
    diagnosis read (``diagnosis.read_features``: in the top slice where measured there) show it —
    a rule fires on relative sizes, so a fixed sentence per type claimed "cheaper baskets" for a
    promotion whose baskets grew and "orders level" for a pricing error on orders -14 %."""
    kind = ep.diagnosis.type
    if _product_only(ep) and kind in _REASON_PRODUCT:
        if kind == "pricing_error" and ep.direction in ("up", "down"):
            way = "rise" if ep.direction == "up" else "fall"
            return f"the product watcher saw a list price {way} against its own recent price"
        return _REASON_PRODUCT[kind]
    # no visits anywhere: a file of slices only has none store-wide but its slice's own
    # (it said "the input has no visitor data" beside a title quoting a channel's sessions)
    if (ep.kpi_changes.get("sessions") is None
            and (ep.scope_changes or {}).get("sessions") is None and kind in _REASON_NO_VISITS):
        return _REASON_NO_VISITS[kind]
    d = ep.diagnosis
    f = read_features(ep.kpi_changes, ep.drivers, ep.days, (d.persistence, d.persistence_z),
                      ep.scope_changes)
    s, c, b, o = f.s, f.c, f.b, f.o
    if kind == "site_outage":  # in the top slice the diagnosis read (sessions: no category)
        where = (f"in {_slice_label(f.dim, f.value)}"
                 if f.dim is not None and f.value is not None and f.dim != "category"
                 else "store-wide")
        kept = " while buyers kept converting" if c > -EPS else ", more than conversion fell"
        return f"visits were lost {where}{kept}, so visitors could not reach the shop"
    if kind == "level_shift" and d.persistence_z is None:
        # persistence needs four weeks on either side: near the start of the data too
        return ("the move lies too near the start or end of the data to see whether the new "
                "level stays")
    if kind == "bot_traffic":
        return ("extra visits did not buy, so orders stayed level" if abs(o) < EPS
                else "most of the extra visits did not buy")
    if kind == "payment_failure" and c > -EPS:
        return "fewer orders with visits and basket value about level"
    if kind == "churn_wave":
        ret, new = ep.kpi_changes.get("returning_customers"), ep.kpi_changes.get("new_customers")
        if ret is not None and new is not None and ret <= -EPS and new > -EPS:
            return _REASON[kind]
        if ret is not None and new is not None and ret - new <= -EPS:
            return "the loss came mostly through returning customers; new ones fell less"
        if ret is None or new is None:  # no customer ids (a --kpis file)
            return "the fall stayed after the episode, as when customers leave"
        return ("the fall stayed after the episode, returning and new customers alike, as when "
                "customers leave")
    watched = kind in _REASON_PRODUCT and bool(_products(ep))  # the product watcher's flag
    if kind == "stockout":
        if o > -EPS:  # typed by the product watcher, not by the funnel
            return _REASON_PRODUCT[kind] if watched else (
                "fewer of the visitors bought from a category" if c <= -EPS
                else "no funnel pattern of a stockout stands out")
        what = "fewer orders" + (" and smaller baskets" if b <= -EPS else "")
        return what + (", confined to a category" if f.dim == "category" else "")
    if kind == "pricing_error":
        if b >= 0:
            return _REASON_PRODUCT[kind] if watched else "basket value moved, as when prices " \
                "are wrong"
        # read in the top slice, say so: "orders rose" beside the store's orders -3.5 % was
        # the category's own orders (the grounding check reads "orders rose" as the store's)
        w = (f" in {_slice_label(f.dim, f.value)}" if f.dim is not None and f.value is not None
             and (ep.scope_changes or {}).get("orders") is not None else "")
        there = " there" if w else ""
        orders = ("with orders level" if abs(o) < EPS else f"while orders{there} rose" if o > 0
                  else f"more than the orders{there}")
        return f"basket value{w} fell {orders}, as when prices are wrong"
    if kind == "flash_sale":
        more = ("more visitors and more of them buying" if s >= EPS and c >= EPS / 2
                else "more visitors, buying about as before" if s >= EPS
                else "more of the visitors buying" if c >= EPS / 2 else "more orders")
        basket = (", with cheaper baskets" if b <= -EPS / 2
                  else ", with bigger baskets" if b >= EPS / 2 else "")
        return more + basket
    if kind == "fraud_orders":
        visits = " with visits level" if abs(s) < EPS else ""
        return f"bigger baskets{visits}, as when stolen cards buy in bulk"
    return _REASON[kind]
