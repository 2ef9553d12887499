"""The one list of package versions a run records (``run.json["versions"]`` and
``insights.json["run"]["versions"]``), so the two files can never disagree."""

from __future__ import annotations

import platform

PACKAGES = ("shocklab", "numpy", "pandas", "scikit-learn", "prophet", "pydantic", "matplotlib")


def versions() -> dict[str, str]:
    """``{"python": …, package: version}``; a package that is not installed is ``"not installed"``
    (ShockLab itself, when run from a checkout without installing, reports its ``__version__``)."""
    import importlib.metadata as md

    from . import __version__

    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = __version__ if pkg == "shocklab" else "not installed"
    return out
