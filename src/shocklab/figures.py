"""What every PNG a ShockLab command draws shares: matplotlib's "Glyph … missing from font(s)"
warnings kept off stderr. A channel, segment or KPI named in a script the bundled DejaVu fonts
lack (CJK, for one) is drawn as boxes and warned about once per character, even under
``--quiet``; the run is sound and says nothing else, so those lines were noise. Only that warning
is silenced, and only while a figure is laid out and saved."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

GLYPH_MISSING = r"Glyph \d+ .*missing from (current )?font"


@contextmanager
def missing_glyphs_quiet() -> Iterator[None]:
    """Within: matplotlib's missing-glyph UserWarnings are ignored; every other warning is not."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=GLYPH_MISSING, category=UserWarning)
        yield
