"""Episodes of the product watcher's incidents (a product's orders or list price, a list-price
index): folded into the store episode they overlap when it has an incident on the product's
category (``fold_into_store``: one event, one episode, the product named), else kept apart, named
by the product's category — the finest slice the drivers measure — and diagnosed from what the
watcher judged, not from the store's funnel (one product's stockout barely moves its category's
funnel)."""

from __future__ import annotations

from collections import Counter

from shocklab.catalogue import PRICE_KPI, PRODUCT_DIMENSION, product_watched

from .diagnosis import SHOCK_LABELS
from .models import Diagnosis, IncidentInsight

# the watcher compares a product with its own category (or a price with its own past): a flag is
# specific evidence of the kind, not a funnel guess
CONFIDENCE = 0.8


def is_product_item(i: IncidentInsight, indexes: bool) -> bool:
    """An incident on a product series, or on a list-price index when the run watched them."""
    return bool(product_watched(i.dimension, i.kpi, indexes))


def named_slice(g: list[IncidentInsight], categories: dict[str, str]) -> tuple[str, str] | None:
    """The slice a product episode names: its products' (or price indexes') category, the most
    frequent one; None for the store's price index or products of no known category."""
    cats = Counter()
    for i in g:
        if i.dimension == PRODUCT_DIMENSION and str(i.segment) in categories:
            cats[categories[str(i.segment)]] += 1
        elif i.dimension == "category":
            cats[str(i.segment)] += 1
    if not cats or any(i.dimension == "overall" for i in g):
        return None
    return "category", max(cats, key=lambda c: (cats[c], c))


def diagnosis(diag: Diagnosis, g: list[IncidentInsight]) -> Diagnosis:
    """``diag`` retyped by what the watcher flagged: a list price that moved is a pricing error,
    a product's orders that collapsed against its category a stockout."""
    kind = "pricing_error" if any(i.kpi == PRICE_KPI for i in g) else "stockout"
    return diag.model_copy(update={"type": kind, "label": SHOCK_LABELS[kind],
                                   "confidence": max(diag.confidence, CONFIDENCE)})


def join_by_category(groups: list[list[IncidentInsight]],
                     categories: dict[str, str]) -> list[list[IncidentInsight]]:
    """Product-watch groups (``_group``: two products are two slices of one dimension, so two
    groups) joined where they name the same category and share a day: one category's stockout
    flagged on several of its products, or one supplier's, is one happening (TRAIN world s3's
    electronics stockout, 32 % of its products out for four days, was three episodes titled the
    same day and a fourth the next). Groups naming no category stay apart; order of first
    appearance kept, each joined group in start order."""
    out: list[list[IncidentInsight]] = []
    for g in groups:
        cat = named_slice(g, categories)
        s0, e0 = min(i.start for i in g), max(i.end for i in g)
        host = next((h for h in out if cat is not None and named_slice(h, categories) == cat
                     and min(i.start for i in h) <= e0 and s0 <= max(i.end for i in h)), None)
        if host is None:
            out.append(list(g))
        else:
            host += g
            host.sort(key=lambda i: (i.start, i.end, i.incident_id))
    return out


def _slices(g: list[IncidentInsight], categories: dict[str, str]) -> set[tuple[str, str]]:
    """The store slices a product-watch group acts on: its products' categories, its category
    price indexes, and the whole store for the store's own price index."""
    out = set()
    for i in g:
        if i.dimension == PRODUCT_DIMENSION and str(i.segment) in categories:
            out.add(("category", categories[str(i.segment)]))
        elif i.dimension in ("category", "overall"):
            out.add((i.dimension, str(i.segment)))
    return out


def fold_into_store(groups: list[list[IncidentInsight]], categories: dict[str, str],
                   indexes: bool) -> list[list[IncidentInsight]]:
    """Groups with each product-watch group (a product's orders or list price, a category's
    price index) folded into the store group it overlaps in time that has an incident on the
    same category (the store's view of the same stockout or pricing error; the most days shared,
    then the earliest): one event, one episode, the product named by its incidents. A group that
    names no single category (the store's own price index beside its categories': a store-wide
    pricing error) folds into one with an incident on any slice it acts on, the store for the
    store's index (random world 23's E07 was two episodes with the same measured days and
    figures). A product group with no such store group stays its own episode."""
    store = [g for g in groups if not is_product_item(g[0], indexes)]
    out = [g for g in store]
    for g in (g for g in groups if is_product_item(g[0], indexes)):
        cat = named_slice(g, categories)
        s0, e0 = min(i.start for i in g), max(i.end for i in g)

        def shared(h: list[IncidentInsight], s0=s0, e0=e0) -> int:
            return (min(e0, max(i.end for i in h)) - max(s0, min(i.start for i in h))).days + 1

        wanted = {cat} if cat is not None else _slices(g, categories)
        hosts = [h for h in store if h[0].planned == g[0].planned
                 and any((i.dimension, i.segment) in wanted for i in h) and shared(h) > 0]
        if not hosts:
            out.append(g)
            continue
        host = max(hosts, key=lambda h: (shared(h), -store.index(h)))
        host += g
        host.sort(key=lambda i: (i.start, i.end, i.incident_id))
    return out
