"""Detector registry: importing this package registers every detector (one module each).

``REGISTRY`` maps a ``type`` name to its class; each class declares its pydantic
``config_class``. ``get_detector_class`` raises InputError listing the known names.
"""

# registration (the oracle is declared here, implemented in evaluation.oracle)
from . import isolation_forest, oracle_spec, prophet_residual, rolling_zscore  # noqa: F401
from . import level_shift  # noqa: F401  (off unless `external.detectors` switches it on)
from .base import REGISTRY, Detector, DetectorConfig, DetectorInput, get_detector_class, register

__all__ = [
    "REGISTRY",
    "Detector",
    "DetectorConfig",
    "DetectorInput",
    "get_detector_class",
    "register",
]
