"""Bad-input corpus: every broken input gets a clear error and leaves the store unchanged.

Most cases take 48 real hourly XRP candles (data/sample) and inject exactly one defect (a NaN, a
negative price, a swapped label...). That is editing real prices on purpose, to produce the broken
input the case is about; no case fabricates a price series. Text layouts live in tests/quality/corpus/.

Two routes into the store are exercised:
- file → `pipeline.stages.prepare_pair` (import, repairs, GX gate) → the data dir (validated/ and the
  stage's candle store; quarantine/ excluded);
- batch → `market.store.CandleStore.upsert(validate=gate)` (what the ingest flow does), when the store
  module is present.
Both stores are hashed before and after each case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.params import load_params
from market.frame import CandleDataError
from pipeline.paths import DataPaths
from pipeline.prepare import prepare_pair
from quality.expectations import DataQualityError, gate

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
PARAMS = load_params(ROOT / "params.yaml")
PAIR = "XRP/USD"
ERRORS = (CandleDataError, DataQualityError)

try:
    from market.store import CandleStore
except ImportError:  # market/store.py is optional for this test: the validated folder is the store then
    CandleStore = None  # type: ignore[assignment,misc]


def _real() -> pd.DataFrame:
    return pd.read_parquet(ROOT / "data" / "sample" / "binance" / "XRP_USDT-1h.parquet").iloc[1000:1048].reset_index(
        drop=True)


def _set(frame: pd.DataFrame, row: int, **values: object) -> pd.DataFrame:
    out = frame.copy()
    for col, value in values.items():
        if not isinstance(value, float | int):
            out[col] = out[col].astype(str)  # a text column, as a CSV-to-parquet conversion leaves it
        out.loc[row, col] = value
    return out


def _future(f: pd.DataFrame) -> pd.DataFrame:
    start = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=len(f) - 3)
    return f.assign(date=pd.date_range(start, periods=len(f), freq="h"))


def _gap(f: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([f.iloc[:5], f.iloc[5:].assign(date=f["date"].iloc[5:] + pd.Timedelta(hours=30))])


def _off_grid(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(date=f["date"].where(f.index != 20, f["date"] + pd.Timedelta(minutes=30)))


def _jump(f: pd.DataFrame) -> pd.DataFrame:
    return _set(f, 30, close=f["close"][30] * 10, high=f["close"][30] * 10)


def _zero_volume(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(volume=f["volume"].where(f.index % 10 != 0, 0.0))


def _swap_rows(f: pd.DataFrame) -> pd.DataFrame:
    return f.iloc[[*range(10), 11, 10, *range(12, len(f))]].reset_index(drop=True)


def _dup_label(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(date=f["date"].where(f.index != 11, f["date"][10]))


def _five_minute() -> pd.DataFrame:
    return pd.read_feather(ROOT / "data" / "sample" / "binance" / "XRP_USDT-5m.feather").iloc[:48]


def _daily() -> pd.DataFrame:
    from market.history import import_file
    return import_file(ROOT / "data" / "sample" / "kraken" / "XRPUSD_1440.csv").frame.iloc[-48:].drop(columns="trades")


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], pd.DataFrame] | str  # a frame (written as parquet) or a corpus/ file name
    error: str                               # regex the error message must match
    route: str = "file"                      # "file": prepare_pair; "batch": gate + store upsert


F = _real
CASES = [
    Case("nan_close", lambda: _set(F(), 7, close=np.nan), "NaN or infinite"),
    Case("nan_open", lambda: _set(F(), 0, open=np.nan), "row 0 .*NaN or infinite"),
    Case("inf_high", lambda: _set(F(), 9, high=np.inf), "row 9 .*NaN or infinite"),
    Case("minus_inf_low", lambda: _set(F(), 9, low=-np.inf), "NaN or infinite"),
    Case("nan_volume", lambda: _set(F(), 3, volume=np.nan), "row 3 .*NaN or infinite"),
    Case("inf_volume", lambda: _set(F(), 3, volume=np.inf), "NaN or infinite"),
    Case("negative_open", lambda: _set(F(), 12, open=-0.5), "row 12 .*prices must be > 0"),
    Case("zero_close", lambda: _set(F(), 12, close=0.0), "prices must be > 0"),
    Case("negative_volume", lambda: _set(F(), 4, volume=-1.0), "row 4 .*negative volume"),
    Case("high_below_low", lambda: _set(F(), 5, high=F()["low"][5] * 0.9), "row 5 .*high/low do not bracket"),
    Case("high_below_close", lambda: _set(F(), 6, high=F()["close"][6] * 0.99), "high/low do not bracket"),
    Case("low_above_open", lambda: _set(F(), 6, low=F()["open"][6] * 1.01), "high/low do not bracket"),
    Case("string_price_parquet", lambda: _set(F(), 8, close="0.5x"), "row 8 .*close='0.5x' is not a number"),
    Case("string_volume_parquet", lambda: _set(F(), 2, volume="n/a"), "volume='n/a' is not a number"),
    Case("string_price_csv", "string_price_no_header.csv", "low='abc' is not a number"),
    Case("duplicate_timestamp_other_content", lambda: _dup_label(F()), "not strictly increasing"),
    Case("future_timestamps", lambda: _future(F()), r"no candle from the future.*: 2 of 48 rows"),
    Case("gap_longer_than_limit", lambda: _gap(F()), r"no gap longer than 24 candles.*1 of 48 rows"),
    Case("off_grid_timestamp", lambda: _off_grid(F()), r"candles sit on the timeframe grid.*1 of 48 rows"),
    Case("huge_jump", lambda: _jump(F()), r"\|log return\| above 0.7.*2 of 48 rows"),
    Case("too_many_zero_volume", lambda: _zero_volume(F()), r"zero-volume candles.*5 of 48 rows"),
    Case("wrong_timeframe_5m_as_1h", _five_minute, "the typical step is one candle"),
    Case("wrong_timeframe_1d_as_1h", _daily, r"the typical step is one candle.*observed 24.0"),
    Case("missing_column_close", lambda: F().drop(columns="close"), r"missing column\(s\) \['close'\]"),
    Case("missing_column_volume", lambda: F().drop(columns="volume"), r"missing column\(s\) \['volume'\]"),
    Case("extra_column", lambda: F().assign(vwap=F()["close"]), r"unexpected column\(s\) \['vwap'\]"),
    Case("timezone_naive_dates", lambda: F().assign(date=F()["date"].dt.tz_localize(None)),
         "must be timezone-aware UTC"),
    Case("empty_parquet", lambda: F().iloc[:0], "no candles"),
    Case("empty_file", "empty.csv", "unknown CSV layout"),
    Case("header_only_csv", "header_only.csv", "no candles"),
    Case("garbage_layout_csv", "garbage_layout.csv", "unknown CSV layout"),
    # headerless, so its columns are known only by their count: 6 is neither Kraken OHLCVT (7) nor trades (3).
    # (A header naming time,open,high,low,close,volume is read by its names: trades are optional.)
    Case("too_few_kraken_columns", "kraken_headerless_six_fields.csv", "cannot read|missing column|NaN"),
    Case("unknown_extension", "README.md", "unknown candle file format '.md'"),
    Case("file_not_found", "no_such_file.parquet", "file not found"),
    Case("cdd_local_time_interleaved", str(ROOT / "data" / "sample" / "kraken" / "Kraken_XRPUSD_1h.csv"),
         r"must be unique together|OHLCV under a different time.*10 of 21537 rows"),
    # batches handed to the gate directly (ingest flow): no importer sorts or dedupes them first
    Case("batch_out_of_order", lambda: _swap_rows(F()), r"dates strictly increase.*1 of 48 rows", "batch"),
    Case("batch_newest_first", lambda: F().iloc[::-1].reset_index(drop=True), "dates strictly increase", "batch"),
    Case("batch_exact_duplicates", lambda: pd.concat([F(), F().iloc[[5]]]).sort_values("date", kind="stable")
         .reset_index(drop=True), r"dates are unique.*2 of 49 rows", "batch"),
    Case("batch_timezone_naive", lambda: F().assign(date=F()["date"].dt.tz_localize(None)),
         "timezone-aware", "batch"),
    Case("batch_string_price", lambda: _set(F(), 8, close="0.5x"), "float64|not a number", "batch"),
    Case("batch_nan_high", lambda: _set(F(), 8, high=np.nan), r"high is present.*1 of 48 rows", "batch"),
    Case("batch_future", lambda: _future(F()), "no candle from the future", "batch"),
]


def _tree_hash(root: Path) -> str:
    """Every stored byte under root (validated files, the stage's candle store), quarantine excluded."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "quarantine" not in p.relative_to(root).parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, Path]:
    """Stores holding good real candles: the validated folder (via a passing prepare) and the candle store."""
    root = tmp_path_factory.mktemp("store")
    good = root / "good.parquet"
    _real().to_parquet(good, index=False)
    paths = DataPaths(root / "data")
    prepare_pair(PAIR, good, PARAMS, paths, "seed")
    if CandleStore is not None:
        CandleStore(root / "candles").upsert(PAIR, "1h", _real(), "seed")
    return paths, root / "candles"


def _source(case: Case, tmp_path: Path) -> Path:
    if isinstance(case.build, str):
        return Path(case.build) if Path(case.build).is_absolute() else CORPUS / case.build
    path = tmp_path / f"{case.id}.parquet"
    case.build().to_parquet(path, index=False)
    return path


def _gate(batch: pd.DataFrame, paths: DataPaths) -> None:
    gate(batch, PARAMS.quality, "1h", "XRP-USD", paths.quarantine, "corpus")


def test_corpus_has_at_least_30_distinct_cases() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input_gives_a_clear_error_and_leaves_the_store_unchanged(
        case: Case, seeded: tuple[DataPaths, Path], tmp_path: Path) -> None:
    paths, candles = seeded
    before = (_tree_hash(paths.root), _tree_hash(candles))
    if case.route == "file":
        with pytest.raises(ERRORS, match=case.error):
            prepare_pair(PAIR, _source(case, tmp_path), PARAMS, paths, f"corpus-{case.id}")
    else:
        batch = case.build()  # type: ignore[operator]
        with pytest.raises(DataQualityError, match=case.error):
            _gate(batch, paths)  # the GX gate alone, on the raw batch
        if CandleStore is not None:  # the store's own schema check or the gate: either refuses it
            with pytest.raises(ERRORS, match=r"row \d+ .*(not strictly increasing|NaN|not a number)|gate failed|"
                                               "timezone-aware"):
                CandleStore(candles).upsert(PAIR, "1h", batch, case.id, validate=lambda b: _gate(b, paths))
    assert (_tree_hash(paths.root), _tree_hash(candles)) == before
