"""The Parquet candle store on real bundled candles: idempotent upsert, no-op re-ingest, conflict policies,
bad batches that change nothing, crash safety, gap report and contiguous reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from market.frame import CandleDataError
from market.history import import_file
from market.store import CandleStore, StoreGapError, find_gaps, merge_candles, split_by_month, to_store_schema

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture
def xrp(xrp_1h: pd.DataFrame) -> pd.DataFrame:
    """Real XRP hourly candles over three calendar months (2024-01-01 → 2024-03-31)."""
    window = (xrp_1h["date"] >= "2024-01-01") & (xrp_1h["date"] < "2024-04-01")
    return xrp_1h.loc[window].reset_index(drop=True)


def _snapshot(store: CandleStore) -> dict[str, bytes]:
    return {str(p.relative_to(store.root)): p.read_bytes() for p in store.root.rglob("*.parquet")}


def test_upsert_partitions_by_month_and_reads_back_identical(tmp_path: Path, xrp: pd.DataFrame) -> None:
    store = CandleStore(tmp_path / "store")
    report = store.upsert("XRP/USD", "1h", xrp, "sample")
    assert (report.added, report.replaced, report.unchanged) == (len(xrp), 0, 0)
    names = sorted(Path(f).name for f in report.files_written)
    assert names == ["2024-01.parquet", "2024-02.parquet", "2024-03.parquet"]
    assert (tmp_path / "store" / "kraken" / "XRP-USD" / "1h" / "2024-02.parquet").exists()
    back = store.read("XRP/USD", "1h", contiguous=True)
    pd.testing.assert_frame_equal(back[list(xrp.columns)], xrp)
    assert back["trades"].isna().all()


def test_reingesting_the_same_window_writes_nothing(tmp_path: Path, xrp: pd.DataFrame) -> None:
    store = CandleStore(tmp_path / "store")
    store.upsert("XRP/USD", "1h", xrp, "sample")
    before = {p: p.stat().st_mtime_ns for p in store.month_files("XRP/USD", "1h")}
    again = store.upsert("XRP/USD", "1h", xrp.iloc[100:900], "sample again")
    assert again.files_written == () and again.added == 0 and again.unchanged == 800
    assert {p: p.stat().st_mtime_ns for p in store.month_files("XRP/USD", "1h")} == before


def test_overlapping_batch_adds_only_the_new_candles_and_touches_only_their_month(
        tmp_path: Path, xrp: pd.DataFrame) -> None:
    store = CandleStore(tmp_path / "store")
    store.upsert("XRP/USD", "1h", xrp.iloc[:-48], "older")
    report = store.upsert("XRP/USD", "1h", xrp.iloc[-100:], "newer")
    assert (report.added, report.unchanged) == (48, 52)
    assert [Path(f).name for f in report.files_written] == ["2024-03.parquet"]
    assert len(store.read("XRP/USD", "1h")) == len(xrp)


def test_conflicting_candle_is_replaced_or_kept_by_policy(tmp_path: Path, xrp: pd.DataFrame) -> None:
    # One real candle with its close nudged: stands in for an exchange revising a candle we already hold.
    revised = xrp.iloc[10:20].copy()
    revised.loc[revised.index[3], ["close", "high"]] *= 1.01
    store = CandleStore(tmp_path / "store")
    store.upsert("XRP/USD", "1h", xrp, "sample")
    kept = store.upsert("XRP/USD", "1h", revised, "history file", policy="keep")
    assert (kept.conflicts_kept, kept.replaced, kept.files_written) == (1, 0, ())
    assert store.read("XRP/USD", "1h")["close"].iloc[13] == xrp["close"].iloc[13]
    replaced = store.upsert("XRP/USD", "1h", revised, "exchange", policy="replace")
    assert (replaced.replaced, replaced.unchanged, len(replaced.files_written)) == (1, 9, 1)
    assert store.read("XRP/USD", "1h")["close"].iloc[13] == pytest.approx(xrp["close"].iloc[13] * 1.01)


def test_known_trade_count_survives_a_batch_without_one() -> None:
    stored = to_store_schema(import_file(SAMPLE / "kraken" / "XRPUSD_1440.csv").frame.iloc[:5], "kraken daily")
    batch = stored.assign(trades=pd.array([pd.NA] * 5, dtype="Int64"))
    batch.loc[2, "close"] = batch.loc[2, "high"]
    merged = merge_candles(stored, batch, "replace")
    assert merged.replaced == 1
    assert merged.frame["trades"].tolist() == stored["trades"].tolist()


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: f.assign(close=f["close"].astype(object).where(f.index != 7, "n/a")), r"row 7 .*close='n/a'"),
    (lambda f: pd.concat([f.iloc[:5], f.iloc[4:6]]), "duplicate or out of order"),
    (lambda f: f.iloc[[0, 2, 1, 3]], "duplicate or out of order"),
    (lambda f: f.iloc[:0], "no candles"),
])
def test_bad_batch_is_refused_with_row_and_nothing_stored_changes(tmp_path: Path, xrp: pd.DataFrame, damage,
                                                                  message: str) -> None:
    store = CandleStore(tmp_path / "store")
    store.upsert("XRP/USD", "1h", xrp, "sample")
    before = _snapshot(store)
    with pytest.raises(CandleDataError, match=message):
        store.upsert("XRP/USD", "1h", damage(xrp.iloc[-20:].reset_index(drop=True)), "bad batch")
    assert _snapshot(store) == before


def test_a_failing_validator_stops_the_merge(tmp_path: Path, xrp: pd.DataFrame) -> None:
    store = CandleStore(tmp_path / "store")

    def refuse(frame: pd.DataFrame) -> None:
        raise ValueError(f"gate failed on {len(frame)} rows")

    with pytest.raises(ValueError, match="gate failed on 2184 rows"):
        store.upsert("XRP/USD", "1h", xrp, "sample", validate=refuse)
    assert store.month_files("XRP/USD", "1h") == []


def test_kill_during_write_leaves_the_stored_month_intact(tmp_path: Path, xrp: pd.DataFrame) -> None:
    """A real SIGKILL of the writer after the temp file is written but before the rename."""
    root = tmp_path / "store"
    store = CandleStore(root)
    store.upsert("XRP/USD", "1h", xrp.iloc[:-48], "older")
    before = _snapshot(store)
    newer = tmp_path / "newer.parquet"
    xrp.iloc[-100:].to_parquet(newer)
    child = textwrap.dedent(f"""
        import os, signal, pandas as pd, pyarrow.parquet as pq
        from market import store as s
        real = pq.write_table
        def write_then_die(*a, **k):
            real(*a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        s.pq.write_table = write_then_die
        s.CandleStore({str(root)!r}).upsert("XRP/USD", "1h", pd.read_parquet({str(newer)!r}), "newer")
    """)
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=120)
    assert done.returncode == -9
    assert _snapshot(store) == before
    assert list(store.series_dir("XRP/USD", "1h").glob(".*.tmp"))  # the torn temp file is there, and ignored
    assert len(store.read("XRP/USD", "1h")) == len(xrp) - 48
    assert store.upsert("XRP/USD", "1h", xrp.iloc[-100:], "newer, retried").added == 48


def test_gap_report_and_contiguous_read(tmp_path: Path, xrp: pd.DataFrame) -> None:
    store = CandleStore(tmp_path / "store")
    holed = xrp.drop(index=[*range(500, 530), 1000])
    store.upsert("XRP/USD", "1h", holed, "holed")
    gaps = store.gap_report("XRP/USD", "1h")
    assert [(g.after, g.missing) for g in gaps] == [(xrp["date"][499], 30), (xrp["date"][999], 1)]
    with pytest.raises(StoreGapError, match="30 candle"):
        store.read("XRP/USD", "1h", contiguous=True)
    tail = store.read("XRP/USD", "1h", start=xrp["date"][1001], contiguous=True)
    assert len(tail) == len(xrp) - 1001
    window = store.read("XRP/USD", "1h", start=pd.Timestamp("2024-02-20", tz="UTC"),
                        end=pd.Timestamp("2024-02-22 23:00", tz="UTC"))
    assert len(window) == 72 and find_gaps(window, "1h") == []


def test_real_kraken_history_with_defects_goes_in_and_gaps_are_reported(tmp_path: Path) -> None:
    daily = import_file(SAMPLE / "kraken" / "XRPUSD_1440.csv").frame
    store = CandleStore(tmp_path / "store")
    report = store.upsert("XRP/USD", "1d", daily, "XRPUSD_1440.csv", policy="keep")
    assert report.added == 2507 and len(report.files_written) == len(split_by_month(to_store_schema(daily, "d")))
    missing = [(str(g.after.date()), g.missing) for g in store.gap_report("XRP/USD", "1d")]
    assert missing == [("2018-01-11", 1), ("2022-05-10", 2)]  # 3 missing days (PROVENANCE.md)
    assert store.read("XRP/USD", "1d")["trades"].notna().all()
