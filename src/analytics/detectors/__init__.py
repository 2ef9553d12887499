"""Detector registry: importing this package registers every detector (one module each).

``REGISTRY`` maps a ``type`` name to its class; each class declares its pydantic
``config_class``. ``get_detector_class`` raises InputError listing the known names.
"""

# registration (the oracle is declared here, implemented in evaluation.oracle)
# level_shift and likelihood (a wrapper) are off unless the config section `external` switches
# them on (--kpis input only)
from . import (  # noqa: F401
    count_likelihood,
    isolation_forest,
    level_shift,
    likelihood,
    oracle_spec,
    product_watch,
    prophet_residual,
    rolling_zscore,
)
from .base import REGISTRY, Detector, DetectorConfig, DetectorInput, get_detector_class, register

__all__ = [
    "REGISTRY",
    "Detector",
    "DetectorConfig",
    "DetectorInput",
    "get_detector_class",
    "register",
]
