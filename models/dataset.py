"""Turn candle frames into a training table: features, labels, and an honest time split.

Each pair is featurised on its own full history (features never cross pairs), labelled with the
forward return net of fees, then split in time: the last `holdout_fraction` of every pair is kept for
out-of-sample evaluation, and the `horizon` candles before the cut are purged from training so no
training label peeks into the holdout period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.params import Params
from features.labels import direction_label, forward_net_log_return
from features.spec import FeatureSpec


@dataclass(frozen=True)
class Dataset:
    """Row-aligned arrays. `pair` and `date` identify each row; `net_return` is the labelled outcome."""

    X: np.ndarray
    y: np.ndarray
    net_return: np.ndarray
    pair: np.ndarray
    date: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: np.ndarray) -> Dataset:
        return Dataset(self.X[mask], self.y[mask], self.net_return[mask], self.pair[mask], self.date[mask])


def columns(frame: pd.DataFrame) -> Mapping[str, Any]:
    """A candle frame as the column mapping the feature code reads (no copy)."""
    return {name: frame[name].to_numpy() for name in ("open", "high", "low", "close", "volume")}


def pair_table(frame: pd.DataFrame, pair: str, spec: FeatureSpec, params: Params) -> pd.DataFrame:
    """Features + label for one pair; rows inside the warm-up or without a known future are dropped."""
    X = spec.batch(columns(frame))
    net = forward_net_log_return(frame["close"].to_numpy(), params.label.horizon, params.fees.taker)
    table = pd.DataFrame(X, columns=list(spec.names))
    table.insert(0, "date", frame["date"].to_numpy())
    table.insert(1, "pair", pair)
    table["net_return"] = net
    table["label"] = direction_label(net, params.label.min_net_return)
    table["holdout"] = _holdout_mask(len(frame), params.split.holdout_fraction)
    table["purged"] = _purge_mask(table["holdout"].to_numpy(), params.label.horizon)
    return table.iloc[spec.warmup :].reset_index(drop=True)


def holdout_start_index(n_rows: int, holdout_fraction: float) -> int:
    return int(n_rows * (1.0 - holdout_fraction))


def _holdout_mask(n_rows: int, holdout_fraction: float) -> np.ndarray:
    mask = np.zeros(n_rows, dtype=bool)
    mask[holdout_start_index(n_rows, holdout_fraction) :] = True
    return mask


def _purge_mask(holdout: np.ndarray, horizon: int) -> np.ndarray:
    """Training rows whose label window reaches into the holdout."""
    purged = np.zeros(len(holdout), dtype=bool)
    if holdout.any():
        cut = int(np.argmax(holdout))
        purged[max(cut - horizon, 0) : cut] = True
    return purged


def to_dataset(table: pd.DataFrame, names: tuple[str, ...]) -> Dataset:
    known = table.dropna(subset=["label"])
    return Dataset(
        X=known[list(names)].to_numpy(dtype=np.float64),
        y=known["label"].to_numpy(dtype=np.float64),
        net_return=known["net_return"].to_numpy(dtype=np.float64),
        pair=known["pair"].to_numpy(),
        date=known["date"].to_numpy(),
    )


def split(table: pd.DataFrame, names: tuple[str, ...]) -> tuple[Dataset, Dataset]:
    """(train, holdout): training excludes holdout and purged rows."""
    train = table[~table["holdout"] & ~table["purged"]]
    return to_dataset(train, names), to_dataset(table[table["holdout"]], names)
