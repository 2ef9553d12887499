"""What every PNG a ShockLab command draws shares: matplotlib's "Glyph … missing from font(s)"
warnings kept off stderr. A channel, segment or KPI named in a script the bundled DejaVu fonts
lack (CJK, for one) is drawn as boxes and warned about once per character, even under
``--quiet``; the run is sound and says nothing else, so those lines were noise. Only that warning
is silenced, and only while a figure is laid out and saved.

And matplotlib's own defaults, whatever the machine's style: every public function that draws a
PNG runs under ``house_style``. matplotlib reads a ``matplotlibrc`` from the working directory,
``MATPLOTLIBRC``, ``~/.config/matplotlib`` and its install, so a user's file (a font size, a
``savefig.dpi``, a face colour) changed every plot's bytes: the same data and config gave other
PNGs in another directory or on another account."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

GLYPH_MISSING = r"Glyph \d+ .*missing from (current )?font"


@contextmanager
def missing_glyphs_quiet() -> Iterator[None]:
    """Within: matplotlib's missing-glyph UserWarnings are ignored; every other warning is not."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=GLYPH_MISSING, category=UserWarning)
        yield


@contextmanager
def default_style() -> Iterator[None]:
    """Within: matplotlib's built-in rcParams (``style.use("default")``: no matplotlibrc, the
    backend left as it is); the caller's rcParams are back on exit. Global state, like every
    rcParams change: plots are drawn on one thread per process."""
    from matplotlib import style

    with style.context("default"):
        yield


def house_style(fn: F) -> F:
    """Decorator: ``fn`` draws under ``default_style``."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with default_style():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
