"""No module under src/ over ~500 lines without a reason in its docstring (docs/ARCHITECTURE.md
principle 10): a long module says why it is one module (a ``Size (…)`` sentence)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LIMIT = 520  # "~500"


def long_modules_without_a_reason(root: Path = SRC, limit: int = LIMIT) -> list[str]:
    out = []
    for p in sorted(root.rglob("*.py")):
        text = p.read_text(encoding="utf-8")
        if text.count("\n") <= limit:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "Size (" not in doc:
            out.append(f"{p.relative_to(root)}: {text.count(chr(10))} lines")
    return out


def test_long_modules_say_why():
    assert long_modules_without_a_reason() == []


def test_the_check_catches_a_long_module(tmp_path):
    (tmp_path / "big.py").write_text('"""A module."""\n' + "x = 1\n" * 600)
    (tmp_path / "ok.py").write_text('"""Size (600 lines): one algorithm."""\n' + "x = 1\n" * 600)
    assert long_modules_without_a_reason(tmp_path) == ["big.py: 601 lines"]
