"""Plot helpers: the calibration table is pure; the PNG writers produce real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import plots


def test_calibration_table_bins_by_predicted_probability() -> None:
    prob = np.array([0.05, 0.08, 0.55, 0.58, 0.59, 1.0])
    y = np.array([0, 1, 1, 1, 0, 1])
    mean_p, freq, rows = plots.calibration_table(y, prob, bins=10)
    assert rows.tolist() == [2, 3, 1]  # empty bins dropped, p = 1.0 lands in the top bin
    assert mean_p == pytest.approx([0.065, 0.5733333, 1.0])
    assert freq == pytest.approx([0.5, 2 / 3, 1.0])


def test_plots_write_png_files(tmp_path: Path) -> None:
    dates = np.arange("2025-01-01", "2025-01-11", dtype="datetime64[D]")
    curves = {"model": (dates, np.linspace(100, 110, 10)), "flat": (dates, np.full(10, 100.0))}
    written = [
        plots.equity_plot(curves, tmp_path / "equity.png", "t"),
        plots.importance_plot(["a", "b"], np.array([3.0, 1.0]), tmp_path / "importance.png"),
        plots.calibration_plot(np.array([0, 1, 1]), np.array([0.2, 0.6, 0.7]), tmp_path / "calibration.png"),
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration.png", "equity.png", "importance.png"]
