"""Prepare reads candles that came through the store: ingested from the emulator, seeded from the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.params import load_params
from market.backfill import ingest_pair
from pipeline.candles import candle_store
from pipeline.paths import DataPaths
from pipeline.prepare import prepare, prepare_pair

ROOT = Path(__file__).resolve().parents[2]
PARAMS = load_params(ROOT / "params.yaml")


def test_prepare_trains_on_the_store_seeded_file_plus_newer_ingested_candles(
        emulator, kraken_client, xrp_1h: pd.DataFrame, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = DataPaths(tmp_path / "data")
    emulator.advance(680)  # cursor 1400: the OHLC window is candles 681..1399
    first = xrp_1h["date"].iloc[0].value // 1_000_000
    report = ingest_pair(kraken_client, candle_store(PARAMS, paths), "XRP/USD", "1h", PARAMS.ingest, since_ms=first)
    assert report.added == 1400 and report.backfilled_candles == 681

    seed = tmp_path / "seed.parquet"
    older = xrp_1h.iloc[:600].copy()
    # one close nudged in the file: stands in for a file that disagrees with what Kraken served us
    older.loc[100, ["close", "high"]] = older.loc[100, "high"] * 1.01
    older.to_parquet(seed, index=False)
    prepared = prepare_pair("XRP/USD", seed, PARAMS, paths, "t")

    assert prepared.rows == 1400 and prepared.last == str(xrp_1h["date"].iloc[1399])
    assert any("0 candle(s) of" in n and "added to" in n for n in prepared.store)  # the store already had them
    assert any("1 candle(s) of" in n and "the stored ones are used" in n for n in prepared.store)
    validated = pd.read_parquet(paths.validated("XRP/USD", "1h"))
    assert validated["close"].iloc[100] == xrp_1h["close"].iloc[100]
    assert list(validated.columns) == ["date", "open", "high", "low", "close", "volume"]


def test_validation_json_is_the_same_bytes_from_any_clone_and_any_rerun(tmp_path: Path) -> None:
    """DVC tracks validation.json: if it held the clone's path or this run's store counts, a fresh clone's
    `dvc repro` after an experiment would retrain instead of restoring from the run cache (seen in CI)."""
    params = PARAMS.model_copy(update={"pairs": ("XRP/USD",)})
    written = []
    for home in (tmp_path / "a", tmp_path / "longer-clone-name"):
        src = home / params.data.sample["XRP/USD"]
        src.parent.mkdir(parents=True)
        src.write_bytes((ROOT / params.data.sample["XRP/USD"]).read_bytes())
        paths = DataPaths(home / "data", home)
        for _ in range(2):  # the rerun adds 0 candles
            prepare(params, paths)
            written.append(paths.validation_summary.read_bytes())
    assert len(set(written)) == 1, written
    assert b"longer-clone-name" not in written[0] and b"store:" not in written[0]
