"""Job `prepare`: the store's candles of every params.yaml pair → quality gate → data/validated (what DVC
tracks and training reads). A pair's bundled file, if it has one, seeds the store first."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.files import write_atomic, write_json
from core.params import Params
from market.store import pair_slug
from pipeline.candles import read_frame, seed
from pipeline.paths import DataPaths
from quality.expectations import gate


@dataclass(frozen=True)
class PreparedPair:
    pair: str
    rows: int
    first: str
    last: str
    summary: str
    repairs: tuple[str, ...]
    store: tuple[str, ...]  # what this run added to the store: printed, kept out of validation.json

    def tracked(self) -> dict[str, object]:
        """validation.json's entry: facts of the data only, so a rerun or another clone writes the same bytes
        (DVC then restores later stages from its run cache instead of retraining)."""
        return {k: v for k, v in vars(self).items() if k != "store"}


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    return write_atomic(path, lambda p: frame.to_parquet(p, index=False))


def prepare_pair(pair: str, source: Path | None, params: Params, paths: DataPaths, run_id: str) -> PreparedPair:
    """Seed the store from `source` (default: the pair's bundled file; none: the store alone), read the
    pair's whole stored series, gate it, write the validated file. A failing batch goes to
    data/quarantine/<run_id>/ and raises; nothing validated or stored is overwritten."""
    timeframe = params.data.timeframe
    seeded = seed(params, paths, pair, run_id, source)
    frame = read_frame(params, paths, pair)
    result = gate(frame, params.quality, timeframe, name=pair_slug(pair), quarantine_root=paths.quarantine,
                  run_id=run_id)
    write_parquet(paths.validated(pair, timeframe), frame)
    return PreparedPair(pair, len(frame), str(frame["date"].iloc[0]), str(frame["date"].iloc[-1]),
                        result.summary(), seeded.repairs, seeded.store)


def prepare(params: Params, paths: DataPaths) -> list[PreparedPair]:
    run_id = time.strftime("%Y%m%dT%H%M%S")
    out = [prepare_pair(pair, None, params, paths, run_id) for pair in params.pairs]
    write_json(paths.validation_summary, [p.tracked() for p in out])
    return out


def load_validated(params: Params, paths: DataPaths) -> dict[str, pd.DataFrame]:
    """The candles the model was trained on (prepare's output): what featurize, train and evaluate read."""
    return {pair: pd.read_parquet(paths.validated(pair, params.data.timeframe)) for pair in params.pairs}
