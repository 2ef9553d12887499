"""Configuration of the customer-intelligence part (section ``customers:`` of config/analysis.yaml).

Owned by the customers package; the analysis config embeds ``CustomersConfig``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CustomersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
