"""Episodes of the product watcher's incidents (a product's orders or list price, a list-price
index): kept apart from the store's episodes, named by the product's category — the finest slice
the drivers measure — and diagnosed from what the watcher judged, not from the store's funnel
(one product's stockout barely moves its category's funnel)."""

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
