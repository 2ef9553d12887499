"""Event (shock) types: one module each, registered in ``EVENT_TYPES`` by their ``type`` name.

``EventConfig`` is the discriminated union used in the YAML ``events:`` list; an unknown ``type``
is rejected with the list of known ones.
"""

from typing import Annotated, Union

from pydantic import Field

from . import (  # noqa: F401  (importing registers the types)
    bot_traffic,
    channel_outage,
    churn_wave,
    flash_sale,
    fraud_orders,
    level_shift,
    payment_failure,
    pricing_error,
    site_outage,
    stockout,
)
from .base import EVENT_TYPES, ChurnAction, EventBase, Grid, Levers, Scope, get_event_type, register

EventConfig = Annotated[Union[tuple(EVENT_TYPES.values())], Field(discriminator="type")]  # noqa: UP007

__all__ = ["EVENT_TYPES", "ChurnAction", "EventBase", "EventConfig", "Grid", "Levers", "Scope",
           "get_event_type", "register"]
