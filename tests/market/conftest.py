"""Market-data test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KRAKENFLOW_DATA_DIR (the candle store and quarantine) for one CLI test."""
    monkeypatch.setenv("KRAKENFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"
