"""The one instrument table: parsed from Kraken's own answers, read by the emulator, SimulatedBroker,
reconciliation and the CLI, and seen identically by ccxt through the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ccxt
import httpx
import pytest
import yaml

from core.params import load_params
from market.emulator.server import running_emulator
from market.emulator.venue import PAIRS, Venue
from market.instruments import (
    CCXT_RENAMES,
    UnknownPairError,
    asset_json,
    asset_pair_json,
    bundled,
    load,
    parse_document,
    parse_instruments,
    refresh,
)
from market.kraken import KrakenClient, make_exchange
from trader.brokers.simulated import KRAKEN_LIMITS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "binance"


def test_the_bundled_snapshot_parses_into_kraken_usd_and_eur_pairs() -> None:
    table = bundled()
    assert {"XRP/USD", "DOGE/USD", "BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD", "BTC/EUR", "ETH/EUR"} <= set(
        table.instruments)
    xrp = table.get("XRP/USD")
    assert (xrp.kraken_id, xrp.altname, xrp.wsname, xrp.base, xrp.base_alt, xrp.quote, xrp.quote_alt) == (
        "XXRPZUSD", "XRPUSD", "XRP/USD", "XXRP", "XRP", "ZUSD", "USD")
    assert xrp.pair_decimals == 5 and xrp.lot_decimals == 8 and xrp.tick_size == 0.00001 and xrp.costmin == 0.5
    assert xrp.taker_fee == pytest.approx(0.004) and xrp.maker_fee == pytest.approx(0.0025)
    assert xrp.fees[1] == (10_000.0, 0.35)  # Kraken's schedule: (30-day volume, percent)
    assert table.get("SOL/USD").kraken_id == "SOLUSD" and table.get("ADA/USD").base == "ADA"
    assert table.get("BTC/EUR").quote == "ZEUR" and table.get("ETH/EUR").kraken_id == "XETHZEUR"
    snapshot = json.loads((ROOT / "market" / "data" / "asset_pairs.json").read_text())
    assert snapshot["_note"] and set(snapshot["_provenance"]) >= set(snapshot["AssetPairs"]["result"])


def test_kraken_xdg_is_ccxt_doge_and_xbt_is_btc() -> None:
    table = bundled()
    doge, btc = table.get("DOGE/USD"), table.get("BTC/USD")
    assert (doge.kraken_id, doge.base, doge.base_alt, doge.unified_base) == ("XDGUSD", "XXDG", "XDG", "DOGE")
    assert (btc.kraken_id, btc.base, btc.base_alt, btc.unified_base) == ("XXBTZUSD", "XXBT", "XBT", "BTC")
    codes = table.asset_codes()
    assert codes["DOGE"] == codes["XDG"] == codes["XXDG"] == "XXDG"
    assert codes["BTC"] == codes["XBT"] == "XXBT" and codes["USD"] == "ZUSD"


def test_our_renames_are_ccxts_and_balances_arrive_under_the_unified_base() -> None:
    exchange = ccxt.kraken()
    assert all(exchange.commonCurrencies[alt] == code for alt, code in CCXT_RENAMES.items())
    raw = {"error": [], "result": {code: {"balance": "1.5", "hold_trade": "0"} for code in bundled().assets}}
    balances = exchange.parse_balance(raw)["total"]
    bases = bundled().base_assets()
    for symbol, inst in bundled().instruments.items():
        assert balances[bases[symbol]] == 1.5, symbol  # reconcile looks the balance up where ccxt put it
        assert bases[symbol] == inst.unified_base
    assert balances["DOGE"] == balances["BTC"] == 1.5 and "XDG" not in balances and "XBT" not in balances


def test_every_pair_of_params_yaml_is_in_the_table() -> None:
    params = load_params(ROOT / "params.yaml")
    bundled().require(params.pairs)
    assert all(pair in PAIRS and pair in KRAKEN_LIMITS and pair in bundled().base_assets() for pair in params.pairs)


def test_simulated_broker_and_emulator_read_the_same_minimums() -> None:
    for symbol, inst in bundled().instruments.items():
        assert (KRAKEN_LIMITS[symbol].ordermin, KRAKEN_LIMITS[symbol].costmin) == (inst.ordermin, inst.costmin)
        assert PAIRS[symbol] is inst


def test_any_kraken_pair_parses_from_its_answer_even_without_assets() -> None:
    answer = {"error": [], "result": {"XLTCZUSD": {
        "altname": "LTCUSD", "wsname": "LTC/USD", "base": "XLTC", "quote": "ZUSD", "pair_decimals": 2,
        "lot_decimals": 8, "ordermin": "0.05", "costmin": "0.5", "tick_size": "0.01", "fees": [[0, 0.4]],
        "fees_maker": [[0, 0.25]], "status": "online"}, "XBTUSD.d": {"altname": "XBTUSD.d"}}}
    table = parse_instruments(answer)
    (ltc,) = table.instruments.values()
    assert (ltc.symbol, ltc.base_alt, ltc.ordermin, ltc.cost_decimals) == ("LTC/USD", "LTC", 0.05, 2)
    with pytest.raises(ValueError, match="AssetPairs XLTCZUSD: malformed entry"):
        parse_instruments({"XLTCZUSD": {"altname": "LTCUSD", "base": "XLTC", "quote": "ZUSD"}})
    with pytest.raises(ValueError, match="EQuery:Unknown asset pair"):
        parse_instruments({"error": ["EQuery:Unknown asset pair"], "result": {}})


def test_every_instrument_round_trips_through_kraken_shape() -> None:
    table = bundled()
    again = parse_instruments({i.kraken_id: asset_pair_json(i) for i in table.instruments.values()},
                              {a.id: asset_json(a) for a in table.assets.values()})
    assert again.instruments == table.instruments and again.assets == table.assets
    assert asset_pair_json(table.get("BTC/USD"))["ordermin"] == "0.00005"  # Kraken's decimal strings, not 5e-05


def _public(url: str, endpoint: str) -> dict:
    return httpx.get(f"{url}/0/public/{endpoint}", timeout=5).json()


def test_the_emulators_asset_pairs_answer_round_trips_through_the_parser(emulator) -> None:  # type: ignore[no-untyped-def]
    served = parse_instruments(_public(emulator.url, "AssetPairs"), _public(emulator.url, "Assets"))
    assert set(served.instruments) == set(emulator.venue.candles) == {"XRP/USD", "DOGE/USD"}
    assert all(served.instruments[s] == bundled().get(s) for s in served.instruments)
    assert all(served.assets[code] == bundled().assets[code] for code in served.assets)


def test_ccxt_load_markets_against_the_emulator_sees_the_tables_numbers(emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    markets = kraken_client.load_markets()
    for symbol in emulator.venue.candles:
        market, inst = markets[symbol], bundled().get(symbol)
        assert (market["id"], market["altname"], market["base"], market["info"]["base"]) == (
            inst.kraken_id, inst.altname, inst.unified_base, inst.base)
        assert market["limits"]["amount"]["min"] == inst.ordermin and market["limits"]["cost"]["min"] == inst.costmin
        assert market["precision"]["price"] == pytest.approx(10.0 ** -inst.pair_decimals)
        assert market["precision"]["amount"] == pytest.approx(10.0 ** -inst.lot_decimals)
        assert market["taker"] == pytest.approx(inst.taker_fee) and market["maker"] == pytest.approx(inst.maker_fee)


def test_the_emulator_replays_any_pair_of_the_table_under_kraken_ids() -> None:
    files = {"BTC/USD": SAMPLE / "XRP_USDT-1h.parquet", "SOL/USD": SAMPLE / "DOGE_USDT-1h.parquet"}
    with running_emulator(files=files) as handle:
        client = KrakenClient(make_exchange(handle.url, timeout_ms=2_000, throttle=False))
        markets = client.load_markets()
        assert markets["BTC/USD"]["id"] == "XXBTZUSD" and markets["BTC/USD"]["limits"]["amount"]["min"] == 0.00005
        assert markets["SOL/USD"]["id"] == "SOLUSD" and client.fetch_candles("BTC/USD", "1h")


def test_a_venue_refuses_a_pair_the_table_does_not_hold() -> None:
    with pytest.raises(ValueError, match="'FOO/USD' is not a Kraken pair in the instrument table"):
        Venue({"FOO/USD": []}, {"ZUSD": 1.0})


def test_refresh_fetches_through_the_client_and_caches_with_the_fetch_time(emulator, kraken_client,  # type: ignore[no-untyped-def]
                                                                            tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "asset_pairs.json"
    table = refresh(kraken_client, cache, source=emulator.url, now=lambda: 1_800_000_000.0)
    assert set(table.instruments) == {"XRP/USD", "DOGE/USD"} and table.fetched_at == "2027-01-15T08:00:00+00:00"
    stored = json.loads(cache.read_text())
    assert stored["source"] == emulator.url and stored["AssetPairs"]["result"]["XDGUSD"]["base"] == "XXDG"
    assert load(cache) == parse_document(stored) == table
    assert load(tmp_path / "missing.json") is bundled() and load() is bundled()


def test_unknown_pair_error_names_the_pair_close_matches_and_the_refresh() -> None:
    with pytest.raises(UnknownPairError) as caught:
        bundled().get("DOGE/USDT")
    text = str(caught.value)
    assert isinstance(caught.value, LookupError) and caught.value.pair == "DOGE/USDT"
    assert "'DOGE/USDT' is not a Kraken pair in the instrument table" in text
    assert "did you mean DOGE/USD" in text and "python -m market.instruments" in text
    with pytest.raises(UnknownPairError, match="did you mean DOGE/USD\\?"):
        bundled().get("XDG/USD")  # Kraken's wsname: ccxt calls it DOGE/USD
    assert bundled().by_kraken_name("XDGUSD").symbol == "DOGE/USD"


def test_the_cli_refuses_an_unknown_pair_at_load_with_exit_2(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["pairs"], raw["data"]["sample"] = ["FOO/USD"], {}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "KRAKENFLOW_STATE_DIR": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "trade", "--mode", "paper",
                           "--params", str(params)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out[-2000:]
    assert "Traceback" not in out and "╭" not in out, out[-2000:]
    assert "FOO/USD" in out and "not a Kraken pair in the instrument table" in out, out
