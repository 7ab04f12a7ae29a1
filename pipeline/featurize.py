"""Job `featurize`: validated candles → the feature + label table per pair (data/features)."""

from __future__ import annotations

import pandas as pd

from core.params import Params
from features.spec import spec_from_params
from models import dataset
from pipeline.paths import DataPaths
from pipeline.prepare import load_validated, write_parquet


def featurize(params: Params, paths: DataPaths) -> dict[str, int]:
    spec = spec_from_params(params.features)
    rows = {}
    for pair, frame in load_validated(params, paths).items():
        table = dataset.pair_table(frame, pair, spec, params)
        write_parquet(paths.features(pair, params.data.timeframe), table)
        rows[pair] = len(table)
    return rows


def load_feature_table(params: Params, paths: DataPaths) -> pd.DataFrame:
    tables = [pd.read_parquet(paths.features(p, params.data.timeframe)) for p in params.pairs]
    return pd.concat(tables, ignore_index=True)
