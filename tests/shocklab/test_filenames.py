"""The one file-name sanitizer (``shocklab.filenames``) behind the run id's label, the KPI plots'
names and the sweep plots' names: three copies had drifted apart (only the KPI plots hashed a
long name). The names pinned here are what each caller wrote before they shared it."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from shocklab.filenames import file_name, hashed_name, safe_name


@pytest.mark.parametrize(("name", "stem"), [
    ("revenue", "revenue"), ("Révenue €", "Révenue__"), ("a/b", "a_b"), ("a?b", "a_b"),
    ("consensus.recall", "consensus_recall"), ("flash_sale", "flash_sale"),
    ("../x y", "___x_y"), ("", ""),
])
def test_safe_name_keeps_letters_digits_dash_and_underscore(name, stem):
    assert safe_name(name) == stem


def test_a_long_name_is_cut_or_hashed():
    long = "x" * 300
    assert safe_name(long, 40) == "x" * 40   # a label: cut to characters
    digest = hashlib.sha256(long.encode()).hexdigest()[:10]
    assert hashed_name(long, 100) == "x" * 50 + "_" + digest
    assert safe_name(long, 100, hashed=True) == hashed_name(long, 100)
    assert safe_name("short", 100, hashed=True) == "short"
    assert len(hashed_name("é" * 300, 100).encode()) <= 61   # whole characters, in bytes


def test_file_name_hashes_only_what_makes_it_invalid():
    assert file_name("{}_vs_{}.png", "consensus.recall", "a" * 200) == (
        f"consensus_recall_vs_{'a' * 200}.png")
    assert file_name("{}_vs_{}.png", "consensus.recall", "a" * 300) == (
        f"consensus_recall_vs_{hashed_name('a' * 300)}.png")


def test_the_run_label_is_unchanged():
    from tests.configs import make_config

    from analytics.context import DataSet
    from analytics.pipeline import run_id

    cfg = make_config()
    for scenario, label in (("default", "default"), ("my world (v2)!", "my_world__v2__"),
                            ("ä" * 50, "ä" * 40), ("", "kpis"), ("???", "___")):
        ds = DataSet(path=None, tables={}, source="kpis", manifest={"scenario": scenario})
        assert run_id(ds, cfg, "h").rsplit("-", 1)[0] == label


def test_the_kpi_plot_names_are_unchanged():
    from analytics.report import plot_names

    long = "x" * 300
    assert plot_names(["revenue", "Révenue €", long, "a/b", "a?b"]) == [
        "kpi_revenue.png", "kpi_Révenue__.png",
        f"kpi_{'x' * 50}_{hashlib.sha256(long.encode()).hexdigest()[:10]}.png",
        f"kpi_a_b_{hashlib.sha256(b'a/b').hexdigest()[:10]}.png",
        f"kpi_a_b_{hashlib.sha256(b'a?b').hexdigest()[:10]}.png"]


def test_sweep_plot_names_are_unchanged_and_a_long_parameter_is_written(tmp_path):
    """'consensus.recall_vs_detectors_rolling_zscore_threshold.png' as before; a 300-character
    parameter made a file name over 255 bytes (OSError: File name too long)."""
    from experiments.plots import sweep_plots

    long = "detectors.custom." + "p" * 300
    board = pd.DataFrame({"detectors.rolling_zscore.threshold": [2.0, 3.0, 4.0],
                          long: [1.0, 1.0, 1.0],
                          "consensus.recall.mean": [0.9, 0.8, 0.7],
                          "consensus.recall.ci_low": [0.8, 0.7, 0.6],
                          "consensus.recall.ci_high": [1.0, 0.9, 0.8]})
    written = sweep_plots(board, ["detectors.rolling_zscore.threshold"], "consensus.recall",
                          tmp_path)
    assert [p.name for p in written] == [
        "consensus_recall_vs_detectors_rolling_zscore_threshold.png"]
    board[long] = np.array([1.0, 2.0, 3.0])
    written = sweep_plots(board, [long], "consensus.recall", tmp_path / "long")
    assert [p.name for p in written] == [
        f"consensus_recall_vs_{hashed_name(long, 100)}.png"]
    assert written[0].is_file()
    mid = "p" * 200   # 228 bytes: a valid file name, kept as it was
    board[mid] = board.pop(long)
    written = sweep_plots(board, [mid], "consensus.recall", tmp_path / "mid")
    assert [p.name for p in written] == [f"consensus_recall_vs_{mid}.png"]
