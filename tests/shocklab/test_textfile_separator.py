"""textfile.separator's tie-break: a header that splits into as many names at two separators
(``date;revenue, EUR``) is settled by data row 1 when that splits into as many fields at one of
them only. Only the unsettled tie (InputError) was tested, so a mutant that dropped the
tie-break survived (audit-mutcli)."""

from __future__ import annotations

import pytest

from shocklab.errors import InputError
from shocklab.textfile import separator


def test_a_tie_on_the_header_is_settled_by_the_first_data_row(tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("date;revenue, EUR\n2025-01-01;15\n2025-01-02;25\n", encoding="utf-8")
    assert separator(f) == ";"
    f.write_text("date,revenue; EUR\n2025-01-01,15\n", encoding="utf-8")
    assert separator(f) == ","


def test_a_tie_the_first_data_row_does_not_settle_is_bad_input(tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("date;revenue, EUR\n2025-01-01;1,5\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot tell the column separator"):
        separator(f)


def test_an_input_that_is_no_regular_file_is_named_for_what_it_is(tmp_path):
    import os

    from shocklab.textfile import not_a_file

    assert not_a_file(tmp_path, "label file") == f"{tmp_path}: is a directory, not a label file"
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    assert "is not a regular file (a pipe" in not_a_file(fifo, "label file")
    assert not_a_file(tmp_path / "nope", "label file") == f"{tmp_path / 'nope'}: label file " \
                                                          "not found"
