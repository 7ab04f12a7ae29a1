"""Where each stage reads and writes, under the data directory (DVC-tracked outputs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from market.store import pair_slug


@dataclass(frozen=True)
class DataPaths:
    root: Path
    """The data directory (DVC-tracked outputs and the candle store)."""
    home: Path = Path(".")
    """The project home: relative paths in params.yaml (the bundled seed files) are relative to it."""

    def validated(self, pair: str, timeframe: str) -> Path:
        return self.root / "validated" / f"{pair_slug(pair)}-{timeframe}.parquet"

    def features(self, pair: str, timeframe: str) -> Path:
        return self.root / "features" / f"{pair_slug(pair)}-{timeframe}.parquet"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def studies(self) -> Path:
        """Optuna's default sqlite storage (not a DVC output: its bytes hold trial timestamps)."""
        return self.root / "studies"

    @property
    def model_dir(self) -> Path:
        return self.root / "models"

    @property
    def model_file(self) -> Path:
        return self.model_dir / "model.lgb"

    @property
    def spec_file(self) -> Path:
        return self.model_dir / "feature_spec.json"

    @property
    def train_metrics(self) -> Path:
        return self.model_dir / "train_metrics.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def metrics(self) -> Path:
        return self.reports / "metrics.json"

    @property
    def equity_csv(self) -> Path:
        return self.reports / "equity.csv"

    @property
    def validation_summary(self) -> Path:
        return self.reports / "validation.json"
