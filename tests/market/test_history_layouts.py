"""History files of other vintages and layouts are read by their columns, not by one fixed header line.

Every layout here is built inside the test from a real file — data/sample (committed) where it suffices,
the team's staged originals in ../shared/data otherwise (those tests skip when that folder is absent) —
by rewriting the real rows in that layout: the same numbers as text, only the header, the time
encoding, the order or the volume naming change. No price or volume is invented. Each layout must
import to candles identical (bit for bit) to importing the original file.

The damaged variants are the same real rows with their *timestamps* damaged the way real exports get
damaged (unix seconds rounded to 1e3, dates truncated to the day, a unix column shifted against its
date column, units mixed); each must be refused with an error naming the damage and the first rows,
and a refused import must leave the candle store as it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from market.frame import CandleDataError
from market.history import ImportResult, canonical_pair, import_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
SHARED = ROOT.parent / "shared" / "data"
CDD = SAMPLE / "kraken" / "Kraken_XRPUSD_1h.csv"          # CDD 2019 layout: banner, Date `07-PM`, newest first
DAILY = SAMPLE / "kraken" / "XRPUSD_1440.csv"             # Kraken OHLCVT (with a header line), unix s
FIVE_MIN = SAMPLE / "binance" / "XRP_USDT-5m.feather"     # freqtrade feather
HOURLY = SAMPLE / "binance" / "XRP_USDT-1h.parquet"       # freqtrade parquet
needs_shared = pytest.mark.skipif(not (SHARED / "kraken" / "cdd_2019").is_dir(),
                                  reason=f"{SHARED} (the team's staged originals) is not on this machine")


@cache
def _original(path: Path) -> ImportResult:
    return import_file(path)


def _same_candles(layout: ImportResult, original: Path, drop: tuple[str, ...] = ()) -> None:
    expected = _original(original).frame.drop(columns=list(drop))
    pd.testing.assert_frame_equal(layout.frame, expected, check_exact=True)


def _cdd_rows(path: Path = CDD) -> tuple[list[str], list[list[str]]]:
    """A real CDD export's header and data rows as text (numbers kept byte for byte), newest first."""
    lines = path.read_text().splitlines()
    return lines[1].split(","), [line.split(",") for line in lines[2:]]


def _hour(date_text: str) -> datetime:
    return datetime.strptime(date_text, "%Y-%m-%d %I-%p").replace(tzinfo=UTC)


def _write(path: Path, rows: list[list[str]], header: list[str] | None = None, banner: str | None = None) -> Path:
    lines = [*([banner] if banner else []), *([",".join(header)] if header else []), *map(",".join, rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cdd_2021(path: Path, shift: Callable[[int, int], int] = lambda _i, t: t) -> Path:
    """CDD's later vintage: no banner, lower-case `unix,date,symbol,…`, unix seconds, full `%H:%M:%S`
    dates, still newest first. `shift(i, unix)` may damage the unix value of data row i."""
    _, rows = _cdd_rows()
    out = [[str(shift(i, int(_hour(r[0]).timestamp()))), f"{_hour(r[0]):%Y-%m-%d %H:%M:%S}", *r[1:]]
           for i, r in enumerate(rows)]
    return _write(path, out, ["unix", "date", "symbol", "open", "high", "low", "close", "Volume XRP", "Volume USD"])


# ---- CryptoDataDownload vintages -----------------------------------------------------------------------

def test_cdd_lower_case_headers_unix_seconds_no_url_line_is_the_same_candles(tmp_path: Path) -> None:
    layout = import_file(_cdd_2021(tmp_path / "Kraken_XRPUSD_1h.csv"))
    assert layout.format == "cdd" and layout.pair == "XRP/USD"
    assert any("sorted rows by date" in r for r in layout.repairs)
    _same_candles(layout, CDD)


def test_cdd_url_only_first_line_and_unix_timestamp_in_milliseconds_is_the_same_candles(tmp_path: Path) -> None:
    """CDD's 2020 vintage: a bare URL line, `Unix Timestamp` in ms before the `07-PM` Date column."""
    header, rows = _cdd_rows()
    out = [[str(int(_hour(r[0]).timestamp()) * 1000), *r] for r in rows]
    path = _write(tmp_path / "Kraken_XRPUSD_1h.csv", out, ["Unix Timestamp", *header],
                  banner="https://www.CryptoDataDownload.com")
    layout = import_file(path)
    assert layout.format == "cdd" and layout.pair == "XRP/USD"
    _same_candles(layout, CDD)


@pytest.mark.parametrize("date_format", ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.000+00:00"])
def test_cdd_iso_dates_oldest_first_without_symbol_is_the_same_candles(tmp_path: Path, date_format: str) -> None:
    """No symbol column and the quote volume first: the base volume is the column named after the one
    coin that is not a fiat or stable coin (or the base coin of the --pair given)."""
    _, rows = _cdd_rows()
    out = [[f"{_hour(r[0]):{date_format}}", *r[2:6], r[7], r[6]] for r in reversed(rows)]
    path = _write(tmp_path / "XRPUSD_1h.csv", out, ["Date", "Open", "High", "Low", "Close", "Volume USD", "Volume XRP"])
    layout = import_file(path)
    assert layout.format == "cdd" and layout.pair is None
    _same_candles(layout, CDD)
    _same_candles(import_file(path, pair="XRP/USD"), CDD)


def _cdd_daily(path: Path, symbol: str = "XRP/USD") -> Path:
    """The real Kraken daily OHLCVT rows in CDD's daily layout: `Unix` (capitalised, seconds), date-only
    `Date`, a slash `Symbol`, `Volume XRP` and `tradecount`; newest first."""
    rows = [line.split(",") for line in DAILY.read_text().splitlines()[1:]]
    out = [[t, f"{datetime.fromtimestamp(int(t), UTC):%Y-%m-%d}", symbol, o, h, lo, c, v, n]
           for t, o, h, lo, c, v, n in reversed(rows)]
    return _write(path, out, ["Unix", "Date", "Symbol", "Open", "High", "Low", "Close", "Volume XRP", "tradecount"])


def test_cdd_daily_with_unix_date_only_symbol_and_tradecount_is_the_kraken_candles(tmp_path: Path) -> None:
    layout = import_file(_cdd_daily(tmp_path / "Kraken_XRPUSD_d.csv"))
    assert layout.format == "cdd" and layout.pair == "XRP/USD" and layout.frame["trades"].dtype.kind == "i"
    _same_candles(layout, DAILY)


@needs_shared
def test_cdd_with_kraken_asset_codes_xbt_picks_the_base_volume_by_the_symbol(tmp_path: Path) -> None:
    """BTC as Kraken names it (`XBTUSD`, `Volume XBT`): the symbol decides which volume is base volume."""
    original = SHARED / "kraken" / "cdd_2019" / "Kraken_BTCUSD_1h.csv"
    header, rows = _cdd_rows(original)
    assert header[6:] == ["Volume BTC", "Volume USD"]
    out = [[r[0], "XBTUSD", *r[2:6], r[7], r[6]] for r in rows]
    path = _write(tmp_path / "XBTUSD.csv", out, [*header[:6], "Volume USD", "Volume XBT"])
    layout = import_file(path)
    assert layout.pair == "BTC/USD"
    _same_candles(layout, original)


# ---- Kraken and freqtrade layouts ------------------------------------------------------------------------

@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_kraken_ohlcvt_headerless_in_any_epoch_unit_is_the_same_candles(tmp_path: Path, unit: str, scale: int) -> None:
    """Kraken ships OHLCVT without a header; the unit of `time` is inferred from its magnitude."""
    rows = [line.split(",") for line in DAILY.read_text().splitlines()[1:]]
    path = _write(tmp_path / f"XRPUSD_1440_{unit}.csv", [[str(int(r[0]) * scale), *r[1:]] for r in rows])
    layout = import_file(path)
    assert layout.format == "kraken_ohlcvt"
    _same_candles(layout, DAILY)


def test_kraken_ohlcvt_header_without_trades_is_read_by_its_column_names(tmp_path: Path) -> None:
    rows = [line.split(",")[:6] for line in DAILY.read_text().splitlines()[1:]]
    layout = import_file(_write(tmp_path / "XRPUSD_1440.csv", rows, ["time", "open", "high", "low", "close", "volume"]))
    assert layout.format == "kraken_ohlcvt"
    _same_candles(layout, DAILY, drop=("trades",))


def test_kraken_trades_in_milliseconds_aggregate_like_trades_in_seconds(xrp_1h: pd.DataFrame, tmp_path: Path) -> None:
    """Four prints per real candle (o, h, l, c at quarter hours, a quarter of its volume each; no Kraken tick
    file is bundled, see test_history.py), written once in unix seconds and once in milliseconds."""
    prints = [(c.date.value // 10**9 + i * 900, p, c.volume / 4) for c in xrp_1h.iloc[:48].itertuples()
              for i, p in enumerate((c.open, c.high, c.low, c.close))]
    seconds = _write(tmp_path / "s.csv", [[str(t), repr(p), repr(v)] for t, p, v in prints])
    millis = _write(tmp_path / "ms.csv", [[str(t * 1000), repr(p), repr(v)] for t, p, v in prints])
    assert import_file(millis, "1h").format == "kraken_trades"
    pd.testing.assert_frame_equal(import_file(millis, "1h").frame, import_file(seconds, "1h").frame, check_exact=True)


def test_freqtrade_json_rows_are_the_same_candles_as_the_feather(tmp_path: Path) -> None:
    frame = _original(FIVE_MIN).frame
    rows = [[d.value // 10**6, o, h, lo, c, v] for d, o, h, lo, c, v in frame.itertuples(index=False)]
    path = tmp_path / "XRP_USDT-5m.json"
    path.write_text(json.dumps(rows))
    layout = import_file(path)
    assert layout.format == "json"
    _same_candles(layout, FIVE_MIN)


def test_freqtrade_parquet_with_epoch_millisecond_dates_is_the_same_candles(tmp_path: Path) -> None:
    frame = pd.read_parquet(HOURLY)
    path = tmp_path / "XRP_USDT-1h.parquet"
    frame.assign(date=frame["date"].astype("int64") // 10**6).to_parquet(path, index=False)
    _same_candles(import_file(path), HOURLY)


def test_symbols_name_pairs_in_every_spelling() -> None:
    assert {canonical_pair(s) for s in ("XRPUSD", "XRP/USD", "xrp-usd", "XXRPZUSD", "XRP_USD")} == {"XRP/USD"}
    assert [canonical_pair(s) for s in ("XBTUSD", "XDGUSD", "BTCUSDT", "ETHBTC", "XRP")] == [
        "BTC/USD", "DOGE/USD", "BTC/USDT", "ETH/BTC", None]


# ---- damaged timestamps are refused, naming the damage and the first rows ---------------------------------

def test_unix_seconds_rounded_to_1e3_collapse_five_minute_candles_and_are_refused(tmp_path: Path) -> None:
    frame = _original(FIVE_MIN).frame.iloc[:500]
    rows = [[str((d.value // 10**9 + 500) // 1000 * 1000), *map(repr, (o, h, lo, c, v))]
            for d, o, h, lo, c, v in frame.itertuples(index=False)]
    path = _write(tmp_path / "XRP_5m.csv", rows, ["unix", "open", "high", "low", "close", "volume"])
    with pytest.raises(CandleDataError, match=r"XRP_5m.csv: timestamps damaged, precision lost: every candle time is a "
                                              r"multiple of 1000 s.*candles collapse onto shared times, first line 3 "
                                              r"\(2024-01-01 00:13:20\+00:00\), line 4 .*fix: export full-precision"):
        import_file(path)


def test_daily_unix_seconds_rounded_to_1e3_are_refused_though_no_candles_collapse(tmp_path: Path) -> None:
    rows = [line.split(",") for line in DAILY.read_text().splitlines()[1:]]
    path = _write(tmp_path / "XRPUSD_1440.csv", [[str(round(int(r[0]), -3)), *r[1:]] for r in rows])
    with pytest.raises(CandleDataError, match=r"precision lost: every candle time is a multiple of 1000 s.*steps of "
                                              r"86000 s and 87000 s at line 2 \(2017-05-19 00:00:00\+00:00\), line 3 "):
        import_file(path)


def test_hourly_dates_truncated_to_the_day_are_refused_as_rounded_into_duplicates(tmp_path: Path) -> None:
    header, rows = _cdd_rows()
    path = _write(tmp_path / "Kraken_XRPUSD_1h.csv", [[r[0][:10], *r[1:]] for r in rows], header)
    with pytest.raises(CandleDataError, match=r"timestamps damaged, rounded into duplicates: 895 time\(s\) carry 21423 "
                                              r"different candles.*first line 21526 \(2017-07-01 00:00:00\+00:00\)"):
        import_file(path)


def test_unix_column_shifted_against_its_date_column_is_refused_naming_the_rows(tmp_path: Path) -> None:
    path = _cdd_2021(tmp_path / "Kraken_XRPUSD_1h.csv", shift=lambda i, t: t + 3600 if 100 <= i < 105 else t)
    with pytest.raises(CandleDataError, match=r"shifted against the date column: 'unix' and 'date' disagree on 5 of "
                                              r"21537 rows, first line 102: unix=1576080000 is 2019-12-11 "
                                              r"16:00:00\+00:00 but date='2019-12-11 15:00:00'"):
        import_file(path)


def test_epoch_column_switching_from_seconds_to_milliseconds_is_read_row_by_row_and_reported(tmp_path: Path) -> None:
    """Exchanges have switched units part-way through a history (Binance: ms → µs); the magnitudes are
    1000× apart, so each value's unit is certain: converted row by row, and the switch reported."""
    rows = [line.split(",") for line in DAILY.read_text().splitlines()[1:]]
    mixed = [[str(int(r[0]) * (1000 if i >= 2000 else 1)), *r[1:]] for i, r in enumerate(rows)]
    layout = import_file(_write(tmp_path / "XRPUSD_1440.csv", mixed))
    assert "column 'time' mixes unix units (2000 in s, 507 in ms; first ms value at line 2001: 1668124800000)" in \
        layout.repairs[0]
    _same_candles(layout, DAILY)


def test_epoch_before_2000_is_not_a_candle_time(tmp_path: Path) -> None:
    rows = [line.split(",") for line in DAILY.read_text().splitlines()[1:]]
    rows[5][0] = str(int(rows[5][0]) // 1000)  # three digits lost: 1995 as unix seconds
    with pytest.raises(CandleDataError, match=r"line 6: time=1495497 is before 2000 as unix s: not a candle time"):
        import_file(_write(tmp_path / "XRPUSD_1440.csv", rows))


def test_cdd_oldest_vintage_volume_from_and_to_and_a_trailing_comma(tmp_path: Path) -> None:
    """CDD's first exports named the volumes `Volume From` (base) and `Volume To` (quote)."""
    header, rows = _cdd_rows()
    path = _write(tmp_path / "Kraken_XRPUSD_1h.csv", [[*r, ""] for r in rows],
                  [*header[:6], "Volume From", "Volume To", ""], banner="https://www.CryptoDataDownload.com")
    _same_candles(import_file(path), CDD)


# ---- the pair comes from the file; refusals store nothing --------------------------------------------------

def _cli(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, [*args, "--params", str(ROOT / "params.yaml")])
    return done.exit_code, " ".join(done.output.split())


def _tree(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "quarantine" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_import_takes_the_pair_from_the_symbol_column_and_pair_only_confirms_it(data_dir: Path,
                                                                                tmp_path: Path) -> None:
    path = _cdd_daily(tmp_path / "Kraken_XRPUSD_d.csv", symbol="XRPUSD")
    code, out = _cli("import", str(path))
    assert code == 0 and "(cdd) as XRP/USD 1d: 2507 added" in out, out
    code, out = _cli("import", str(path), "--pair", "XRP/USD")
    assert code == 0 and "0 added, 2507 already stored" in out, out


def test_import_refuses_a_pair_the_symbol_column_contradicts_and_stores_nothing(data_dir: Path,
                                                                                tmp_path: Path) -> None:
    assert _cli("import", str(DAILY), "--pair", "XRP/USD")[0] == 0
    before = _tree(data_dir)
    code, out = _cli("import", str(_cdd_daily(tmp_path / "d.csv")), "--pair", "DOGE/USD")
    assert code == 2 and "the file's 'Symbol' column says XRP/USD but --pair is DOGE/USD" in out
    assert "pass --pair XRP/USD" in out and _tree(data_dir) == before


def test_import_of_a_file_without_symbol_needs_pair(data_dir: Path) -> None:
    code, out = _cli("import", str(DAILY))
    assert code == 2 and "no symbol column names the pair; pass --pair" in out
    assert not list((data_dir / "store").rglob("*.parquet"))


def test_damaged_files_are_refused_by_import_and_validate_and_the_store_is_unchanged(data_dir: Path,
                                                                                     tmp_path: Path) -> None:
    assert _cli("import", str(DAILY), "--pair", "XRP/USD")[0] == 0
    before = _tree(data_dir)
    shifted = _cdd_2021(tmp_path / "Kraken_XRPUSD_1h.csv", shift=lambda i, t: t - 3600 if i == 7 else t)
    code, out = _cli("import", str(shifted))
    assert code == 2 and "shifted against the date column" in out and "line 9" in out
    rows = [line.split(",") for line in DAILY.read_text().splitlines()[1:]]
    rounded = _write(tmp_path / "XRPUSD_1440.csv", [[str(round(int(r[0]), -3)), *r[1:]] for r in rows])
    code, out = _cli("import", str(rounded), "--pair", "XRP/USD")
    assert code == 2 and "precision lost" in out
    code, out = _cli("validate", str(rounded))
    assert code == 1 and "rejected:" in out and "precision lost" in out
    assert _tree(data_dir) == before
