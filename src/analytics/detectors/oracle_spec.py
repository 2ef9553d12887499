"""The oracle's settings, declared so ``detectors: {oracle: {type: oracle, …}}`` validates.

Analytics only declares it: the oracle reads the truth (the simulator's exact null,
truth/baseline_daily), so its implementation is ``evaluation.oracle.ExactOracle``, run by the
evaluation stage ``oracle`` right after ``detect`` (``evaluation/pipeline.py``). ``stage_detect``
skips every ``needs_truth`` detector; this class cannot score anything.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import Field

from .base import Detector, DetectorConfig, DetectorInput, register
from .calibrate import Window


class OracleConfig(DetectorConfig):
    type: Literal["oracle"] = "oracle"
    windows: list[Window] = Field(
        default=[3, 7], description="trailing multi-day windows tested besides 1 day"
    )
    product_null: Literal["unconditional", "category"] = Field(
        "unconditional",
        description="null of a product's orders: unconditional (the store's expected orders "
        "thinned by the product's share) | category (given its category's observed orders that "
        "day: binomial with the product's exact share of the category, as the product watcher "
        "judges it)",
    )


@register
class Oracle(Detector):
    """Declaration only (see the module docstring): never votes, needs truth."""

    type_name = "oracle"
    config_class = OracleConfig
    needs_truth = True
    votes = False
    # its scores are already on the calibrated scale (exact null): the shared calibrator passes
    # them through unchanged
    calibrated_raw = True
    watches_products = True  # it scores every watched series, products included

    @property
    def mode(self) -> str:
        return "in_sample"  # it knows the truth baseline of every day

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        raise NotImplementedError(
            f"detector {self.name}: the oracle reads truth and runs in evaluation "
            "(evaluation.oracle.ExactOracle), not in analytics"
        )
