"""The shared vocabulary of ShockLab's tables: KPI names, ratio KPIs, slice dimensions, order
statuses. One definition each, imported by the simulator (which writes the data directory) and by
analytics (which reads it), so it lives in the plumbing package both may import
(docs/ARCHITECTURE.md, import rule 4).
"""

from __future__ import annotations

# order status values in ``orders.status`` (the simulator draws an index into this tuple)
ORDER_STATUSES = ("completed", "cancelled", "returned")

# columns of ``kpis_daily`` after (date, dimension, segment), in this order
KPI_NAMES = ("sessions", "orders", "revenue", "aov", "conversion_rate", "units",
             "new_customers", "returning_customers", "cancellation_rate")

# ratio KPI -> (numerator component, denominator component); additive KPIs are their own component
RATIO_KPIS: dict[str, tuple[str, str]] = {
    "conversion_rate": ("orders", "sessions"),
    "aov": ("revenue", "orders"),
    "cancellation_rate": ("cancelled_orders", "placed_orders"),   # of all orders placed
}

# the store's KPIs and their components; any other name is a generic series of a --kpis file (a
# gauge, a machine metric, signups …)
STORE_SERIES = frozenset([*KPI_NAMES, *(c for pair in RATIO_KPIS.values() for c in pair)])


def is_generic(kpi: str) -> bool:
    """A --kpis file's own column (``value``, ``cpu``, ``signups``), not a store KPI."""
    return kpi not in STORE_SERIES


# the KPIs insights summarise and narrate; customer KPIs are measured on episodes (churn shows
# there)
MAIN_KPIS = ("revenue", "orders", "sessions", "conversion_rate", "aov")
CUSTOMER_KPIS = ("returning_customers", "new_customers")

# the whole store's series (segment "all"); slice dimensions of the order tables; the pair
# dimension joins channel and country
OVERALL_DIMENSION = "overall"
SLICE_DIMENSIONS = ("channel", "country", "category")
PAIR_DIMENSION = "channel_country"
PAIR_SEP = "|"
# single products (segment = product_id as text): watched for collapses of their orders and changes
# of their list price (analytics/watch.py ``product_kpis``, detectors/product_watch.py)
PRODUCT_DIMENSION = "product"
PRODUCT_KPIS = ("orders", "price")
# the list-price KPI: product series, and the price index of each category and of the store that
# watching products adds (analytics/watch.py ``price_index``); judged by the product watcher alone
PRICE_KPI = "price"


def product_watched(dimension, kpi, indexes: bool = True):
    """Element-wise: is a series (columns ``dimension``, ``kpi``) one the product watcher judges
    alone — a product's, or a list-price index? ``indexes``: the run built the list-price indexes
    (``DetectorInput.price_indexes``); without them a KPI named ``price`` is a plain series (a
    ``--kpis`` file's own column)."""
    return (dimension == PRODUCT_DIMENSION) | ((kpi == PRICE_KPI) & bool(indexes))

# dimensions of ``kpis_daily`` (the pair is not a KPI table dimension)
DIMENSIONS = (OVERALL_DIMENSION, *SLICE_DIMENSIONS)
# dimensions the noise model is fitted on (the KPI dimensions plus the pair)
NOISE_DIMENSIONS = (*DIMENSIONS, PAIR_DIMENSION)

# The years a datetime64[ns] holds whole (pandas' nanosecond range, 1677-09-21 … 2262-04-11): the
# analysis refuses a date outside them (a cast raised or wrapped: 9024 -> 2009), so the simulator
# never writes one.
NS_YEARS = (1678, 2261)
