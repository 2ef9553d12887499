"""Fixtures for the customer-intelligence tests: hand-made and small synthetic data."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.analytics.customers.customers_synth import synthetic_store


@pytest.fixture(scope="session")
def store() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders, truth) of 600 customers over 400 days, 30 % of them churning."""
    return synthetic_store()
