"""The candle store as the one source of candles for every job: prepare/train, evaluate, backtest,
paper, the A/B shadow run, drift and the emulator's replay all read it here. Bundled files only seed it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.params import Params
from core.types import Candle
from market.frame import check_candle_frame, to_candles
from market.history import import_file
from market.store import CandleStore, UpsertReport, Validator, pair_slug
from pipeline.paths import DataPaths
from quality.expectations import gate
from quality.repairs import apply_repairs


class MissingCandles(LookupError):
    """The store holds no candles of a pair/timeframe that a job needs; the message names the fix."""


def candle_store(params: Params, paths: DataPaths) -> CandleStore:
    """The candle store (market.store) under `<data_dir>/store/<exchange>/`."""
    return CandleStore(paths.root / "store", params.store.exchange)


def store_gate(params: Params, timeframe: str, name: str, paths: DataPaths, run_id: str) -> Validator:
    """The quality gate as the store's pre-merge check: a failing batch is quarantined under
    data/quarantine/<run_id>/<name>/ and raises, and nothing stored changes."""
    def validate(frame: pd.DataFrame) -> None:
        gate(frame, params.quality, timeframe, name=name, quarantine_root=paths.quarantine, run_id=run_id)
    return validate


def seed_file(params: Params, pair: str, paths: DataPaths) -> Path | None:
    """The bundled file that seeds `pair` (params.yaml `data.sample`, relative to the project home)."""
    src = params.data.sample.get(pair)
    return None if src is None else paths.home / src


@dataclass(frozen=True)
class Seeded:
    """What seeding did: `repairs` depend only on the file (prepare's validation.json, tracked by DVC, keeps
    them); `store` says what this run added (a rerun adds 0), so it is printed, not tracked."""
    report: UpsertReport | None
    repairs: tuple[str, ...]
    store: tuple[str, ...]


def shown(path: Path, home: Path) -> str:
    """`path` relative to the project home when inside it: outputs DVC tracks must not hold the clone's path."""
    return str(path.relative_to(home)) if path.is_relative_to(home) else str(path)


def seed(params: Params, paths: DataPaths, pair: str, run_id: str, source: Path | None = None) -> Seeded:
    """Put `source` (default: the pair's bundled file) into the store, quality-gated (policy `keep`:
    candles already ingested from Kraken win; a disagreement is reported, not applied). Pairs without a
    bundled file are left alone."""
    source = source or seed_file(params, pair, paths)
    if source is None:
        return Seeded(None, (), ())
    imported = import_file(source)
    repaired = apply_repairs(imported.frame, params.data.timeframe, shown(source, paths.home))
    frame = check_candle_frame(repaired.frame, str(source))
    store, timeframe = candle_store(params, paths), params.data.timeframe
    report = store.upsert(pair, timeframe, frame, str(source), "keep",
                          store_gate(params, timeframe, pair_slug(pair), paths, run_id))
    name, series = shown(source, paths.home), shown(store.series_dir(pair, timeframe), paths.home)
    notes = [f"store: {report.added} candle(s) of {name} added to {series}"]
    if report.conflicts_kept:
        notes.append(f"store: {report.conflicts_kept} candle(s) of {name} differ from the stored ones "
                     "(the stored ones are used)")
    return Seeded(report, (*imported.repairs, *repaired.repairs, *repaired.warnings), tuple(notes))


def ensure_seeded(params: Params, paths: DataPaths, pairs: tuple[str, ...] | list[str] | None = None) -> None:
    """Seed each pair the store lacks from its bundled file (once: a fresh clone, an emptied store)."""
    store = candle_store(params, paths)
    for pair in pairs or params.pairs:
        if not store.month_files(pair, params.data.timeframe):
            seed(params, paths, pair, "seed")


def missing_hint(params: Params, pair: str, timeframe: str, paths: DataPaths) -> str:
    store = candle_store(params, paths)
    return (f"the candle store has no {pair} {timeframe} candles ({store.series_dir(pair, timeframe)}): run "
            f"`krakenflow ingest --pair {pair} --timeframe {timeframe}` (from Kraken) or "
            f"`krakenflow import FILE --pair {pair}` (a history file)")


def read_frame(params: Params, paths: DataPaths, pair: str, start: pd.Timestamp | None = None,
               end: pd.Timestamp | None = None, timeframe: str | None = None) -> pd.DataFrame:
    """A pair's stored candles in [start, end] as a checked candle frame; MissingCandles names the fix."""
    tf = timeframe or params.data.timeframe
    store = candle_store(params, paths)
    frame = store.read(pair, tf, start, end)
    if frame.empty:
        raise MissingCandles(missing_hint(params, pair, tf, paths))
    return check_candle_frame(frame.drop(columns="trades"), str(store.series_dir(pair, tf)))


def read_frames(params: Params, paths: DataPaths, pairs: tuple[str, ...] | list[str] | None = None,
                start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> dict[str, pd.DataFrame]:
    return {pair: read_frame(params, paths, pair, start, end) for pair in (pairs or params.pairs)}


def read_candles(params: Params, paths: DataPaths, pairs: tuple[str, ...] | list[str] | None = None,
                 start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> dict[str, list[Candle]]:
    """Engine candles (epoch-ms Candle objects) per pair, from the store."""
    return {pair: to_candles(frame) for pair, frame in read_frames(params, paths, pairs, start, end).items()}


def store_candles(params: Params, paths: DataPaths, pairs: tuple[str, ...] | list[str] | None = None,
                  end: pd.Timestamp | None = None) -> dict[str, list[Candle]]:
    """What backtest, paper and the emulator replay: the store's candles, seeded first on a fresh clone."""
    chosen = list(pairs or params.pairs)
    ensure_seeded(params, paths, chosen)
    return read_candles(params, paths, chosen, end=end)
