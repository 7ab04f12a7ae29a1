"""The one instrument table: every fact about a Kraken pair and its assets, in one place.

Ids, altnames, minimums, decimals and fee schedules come from Kraken's own public AssetPairs and Assets
answers; nothing else in the code base writes them by hand. Three ways in:

- `parse_instruments(asset_pairs, assets)` — pure: Kraken's JSON in, an `InstrumentTable` out, for any pair.
- `bundled()` — the committed snapshot `market/data/asset_pairs.json` (a package resource): offline and
  deterministic, so the emulator, SimulatedBroker, reconciliation and the CLI agree on every number.
- `refresh(client, path)` — both answers fetched through `market.kraken`, written with their fetch time;
  `load(path)` reads such a file back. `python -m market.instruments` rewrites the bundled snapshot.

Symbols are ccxt's unified ones ('DOGE/USD', 'BTC/USD'): ccxt renames Kraken's XDG to DOGE and XBT to BTC,
and keys ccxt's `fetch_balance` the same way, so `Instrument.unified_base` is where a balance arrives.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.files import write_atomic

if TYPE_CHECKING:
    from market.kraken import KrakenClient

SNAPSHOT = "data/asset_pairs.json"
"""The bundled snapshot, relative to the `market` package."""

REFRESH_HINT = "python -m market.instruments --url https://api.kraken.com"

CCXT_RENAMES: Mapping[str, str] = {"XBT": "BTC", "XDG": "DOGE", "LUNA": "LUNC", "LUNA2": "LUNA",
                                   "REPV2": "REP", "REP": "REPV1", "UST": "USTC", "FEE": "KFEE"}
"""Kraken altname → ccxt's unified code, as ccxt's kraken `commonCurrencies` renames them (the entries that
apply to altnames; a test holds this against ccxt). Every other altname is its own unified code."""

FeeSchedule = tuple[tuple[float, float], ...]
"""Kraken's `fees` / `fees_maker`: (30-day volume in `fee_volume_currency`, fee in percent) from that volume on."""


class InstrumentsUnavailable(RuntimeError):
    """Kraken's AssetPairs could not be fetched and no cached table exists: a live trader must not guess
    minimums and decimals, so it refuses to start."""


class UnknownPairError(LookupError):
    """A pair the instrument table does not hold; the message names it, close matches and the fix."""

    def __init__(self, pair: str, known: Iterable[str], aliases: Mapping[str, str] | None = None) -> None:
        known = sorted(known)
        alias = (aliases or {}).get(pair.upper())
        close = [alias] if alias else difflib.get_close_matches(pair.upper(), known, n=3, cutoff=0.5)
        listed = f"; it holds {', '.join(known)}." if len(known) <= 20 else "."
        hint = f"; did you mean {' or '.join(close)}?" if close else listed
        super().__init__(f"{pair!r} is not a Kraken pair in the instrument table ({len(known)} pairs){hint} "
                         f"Pairs use ccxt's unified form (BTC/USD, DOGE/USD). If Kraken lists it, refresh the "
                         f"table: {REFRESH_HINT}")
        self.pair = pair
        self.close_matches = tuple(close)


@dataclass(frozen=True)
class Asset:
    """One Kraken asset (an Assets entry)."""

    id: str                 # Kraken's asset code, e.g. 'XXDG': the key of Balance answers and AssetPairs base/quote
    altname: str            # 'XDG'
    decimals: int           # balance scaling decimals
    display_decimals: int
    status: str = "enabled"

    @property
    def unified(self) -> str:
        """ccxt's code for it ('DOGE' for XXDG/XDG, 'BTC' for XXBT/XBT, 'USD' for ZUSD)."""
        return CCXT_RENAMES.get(self.altname, self.altname)


@dataclass(frozen=True)
class Instrument:
    """One tradable Kraken pair (an AssetPairs entry, its assets resolved through Assets)."""

    symbol: str             # ccxt unified, 'DOGE/USD'
    kraken_id: str          # AssetPairs key, 'XDGUSD'
    altname: str            # 'XDGUSD'
    wsname: str             # 'XDG/USD'
    base: str               # Kraken base asset code, 'XXDG'
    base_alt: str           # its altname, 'XDG'
    quote: str              # Kraken quote asset code, 'ZUSD'
    quote_alt: str          # 'USD'
    ordermin: float         # smallest order volume, base units
    costmin: float          # smallest order value, quote units
    pair_decimals: int      # price decimals
    lot_decimals: int       # volume decimals
    cost_decimals: int      # order value decimals
    tick_size: float        # price increment, quote units
    fees: FeeSchedule       # taker schedule
    fees_maker: FeeSchedule
    fee_volume_currency: str = "ZUSD"
    status: str = "online"  # online | cancel_only | post_only | limit_only | reduce_only | delisted

    @property
    def unified_base(self) -> str:
        """The base's ccxt code: the key its balance arrives under from ccxt ('DOGE', 'BTC', 'XRP')."""
        return self.symbol.split("/")[0]

    @property
    def unified_quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def taker_fee(self) -> float | None:
        """Fee of the lowest volume tier, fraction of notional; None when Kraken sent no schedule."""
        return self.fees[0][1] / 100 if self.fees else None

    @property
    def maker_fee(self) -> float | None:
        return self.fees_maker[0][1] / 100 if self.fees_maker else None


@dataclass(frozen=True)
class InstrumentTable:
    instruments: Mapping[str, Instrument]   # by ccxt symbol
    assets: Mapping[str, Asset]             # by Kraken asset code
    fetched_at: str | None = None           # ISO-8601 UTC time of the answers; None for a hand-assembled one
    source: str = ""

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.instruments

    def get(self, symbol: str) -> Instrument:
        """The instrument for a ccxt symbol, or UnknownPairError naming close matches."""
        try:
            return self.instruments[symbol]
        except KeyError:
            raise UnknownPairError(symbol, self.instruments, self._aliases()) from None

    def require(self, symbols: Iterable[str]) -> None:
        """UnknownPairError for the first symbol the table does not hold."""
        for symbol in symbols:
            self.get(symbol)

    def by_kraken_name(self, name: str) -> Instrument:
        """The instrument Kraken calls `name` (pair id, altname or wsname) or ccxt calls `name`."""
        for inst in self.instruments.values():
            if name in (inst.symbol, inst.kraken_id, inst.altname, inst.wsname):
                return inst
        raise UnknownPairError(name, self.instruments, self._aliases())

    def base_assets(self) -> dict[str, str]:
        """symbol → the base's ccxt code, the key ccxt's fetch_balance uses ('DOGE/USD' → 'DOGE')."""
        return {s: inst.unified_base for s, inst in self.instruments.items()}

    def asset_codes(self) -> dict[str, str]:
        """Every name a person may write for an asset (ccxt code, Kraken altname, Kraken code) → Kraken code:
        'DOGE', 'XDG' and 'XXDG' → 'XXDG'; 'USD' → 'ZUSD'."""
        return {name: a.id for a in self.assets.values() for name in (a.unified, a.altname, a.id)}

    def _aliases(self) -> dict[str, str]:
        """Kraken's own names of a pair → its ccxt symbol, to suggest 'DOGE/USD' for 'XDG/USD'."""
        return {name.upper(): s for s, inst in self.instruments.items()
                for name in (inst.kraken_id, inst.altname, inst.wsname)}


# --- parsing (pure) ------------------------------------------------------------------------------

def parse_instruments(asset_pairs: Mapping[str, Any], assets: Mapping[str, Any] | None = None,
                      fetched_at: str | None = None, source: str = "") -> InstrumentTable:
    """Kraken's AssetPairs (+ Assets) answers → the table. Each may be the whole envelope
    {"error": [], "result": {...}} or its result. Without an Assets entry for an asset, its altname follows
    Kraken's legacy rule (four letters starting X or Z: drop the prefix). Dark-pool pairs ('.d') are skipped."""
    asset_map = {code: _asset(code, raw) for code, raw in _result(assets or {}, "Assets").items()}
    instruments: dict[str, Instrument] = {}
    for kraken_id, raw in _result(asset_pairs, "AssetPairs").items():
        if not kraken_id.endswith(".d"):
            inst = _instrument(kraken_id, raw, asset_map)
            instruments.setdefault(inst.symbol, inst)
    return InstrumentTable(instruments, asset_map, fetched_at, source)


def parse_document(doc: Mapping[str, Any]) -> InstrumentTable:
    """A snapshot or cache file's JSON: {"AssetPairs": answer, "Assets": answer, "fetched_at", "source"}."""
    if "AssetPairs" not in doc:
        raise ValueError("instrument file has no 'AssetPairs' answer")
    return parse_instruments(doc["AssetPairs"], doc.get("Assets"), doc.get("fetched_at"), str(doc.get("source", "")))


def _result(answer: Mapping[str, Any], endpoint: str) -> Mapping[str, Any]:
    if not isinstance(answer, Mapping):  # e.g. the text of a truncated body
        raise ValueError(f"Kraken {endpoint}: the answer is not a JSON object ({str(answer)[:40]!r})")
    if "result" in answer or "error" in answer:
        if answer.get("error"):
            raise ValueError(f"Kraken {endpoint} answered errors: {answer['error']}")
        answer = answer.get("result") or {}
    if not isinstance(answer, Mapping):
        raise ValueError(f"Kraken {endpoint}: result is not an object")
    return answer


def _asset(code: str, raw: Mapping[str, Any]) -> Asset:
    try:
        return Asset(code, str(raw["altname"]), int(raw["decimals"]), int(raw.get("display_decimals", raw["decimals"])),
                     str(raw.get("status", "enabled")))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Kraken Assets {code}: malformed entry ({type(err).__name__}: {err})") from None


def _altname(code: str, assets: Mapping[str, Asset]) -> str:
    if code in assets:
        return assets[code].altname
    return code[1:] if len(code) == 4 and code[0] in "XZ" else code


def _instrument(kraken_id: str, raw: Mapping[str, Any], assets: Mapping[str, Asset]) -> Instrument:
    try:
        base, quote = str(raw["base"]), str(raw["quote"])
        base_alt, quote_alt = _altname(base, assets), _altname(quote, assets)
        pair_decimals = int(raw["pair_decimals"])
        return Instrument(
            symbol=f"{CCXT_RENAMES.get(base_alt, base_alt)}/{CCXT_RENAMES.get(quote_alt, quote_alt)}",
            kraken_id=kraken_id, altname=str(raw["altname"]),
            wsname=str(raw.get("wsname") or f"{base_alt}/{quote_alt}"),
            base=base, base_alt=base_alt, quote=quote, quote_alt=quote_alt,
            ordermin=float(raw["ordermin"]), costmin=float(raw.get("costmin") or 0.0),
            pair_decimals=pair_decimals, lot_decimals=int(raw["lot_decimals"]),
            cost_decimals=int(raw.get("cost_decimals", pair_decimals)),
            tick_size=float(raw.get("tick_size") or 10.0 ** -pair_decimals),
            fees=_schedule(raw.get("fees")), fees_maker=_schedule(raw.get("fees_maker")),
            fee_volume_currency=str(raw.get("fee_volume_currency", "ZUSD")), status=str(raw.get("status", "online")),
        )
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(f"Kraken AssetPairs {kraken_id}: malformed entry ({type(err).__name__}: {err})") from None


def _schedule(raw: Any) -> FeeSchedule:
    return tuple((float(volume), float(percent)) for volume, percent in raw or ())


# --- Kraken's shape back (the emulator serves these) ---------------------------------------------

def kraken_number(x: float) -> str:
    """A decimal string as Kraken writes one: 0.00005 → '0.00005' (never '5e-05'), 50.0 → '50'."""
    return format(Decimal(repr(x)).normalize(), "f")


def asset_pair_json(inst: Instrument) -> dict[str, Any]:
    """The AssetPairs entry `parse_instruments` reads back into `inst`."""
    return {
        "altname": inst.altname, "wsname": inst.wsname, "aclass_base": "currency", "base": inst.base,
        "aclass_quote": "currency", "quote": inst.quote, "lot": "unit", "cost_decimals": inst.cost_decimals,
        "pair_decimals": inst.pair_decimals, "lot_decimals": inst.lot_decimals, "lot_multiplier": 1,
        "leverage_buy": [], "leverage_sell": [],
        "fees": [[_int_if_whole(v), p] for v, p in inst.fees],
        "fees_maker": [[_int_if_whole(v), p] for v, p in inst.fees_maker],
        "fee_volume_currency": inst.fee_volume_currency, "margin_call": 80, "margin_stop": 40,
        "ordermin": kraken_number(inst.ordermin), "costmin": kraken_number(inst.costmin),
        "tick_size": kraken_number(inst.tick_size), "status": inst.status,
    }


def asset_json(asset: Asset) -> dict[str, Any]:
    """The Assets entry `parse_instruments` reads back into `asset`."""
    return {"aclass": "currency", "altname": asset.altname, "decimals": asset.decimals,
            "display_decimals": asset.display_decimals, "status": asset.status}


def _int_if_whole(x: float) -> float | int:
    return int(x) if x.is_integer() else x


# --- the bundled snapshot, the cache, the refresh ------------------------------------------------

@lru_cache(maxsize=1)
def bundled() -> InstrumentTable:
    """The committed snapshot (package data, so it also works from an installed wheel)."""
    text = resources.files("market").joinpath(SNAPSHOT).read_text(encoding="utf-8")
    return parse_document(json.loads(text))


def load(path: Path | None = None) -> InstrumentTable:
    """The table written by `refresh` at `path`, or the bundled snapshot when there is no such file."""
    if path is None or not path.is_file():
        return bundled()
    return parse_document(json.loads(path.read_text(encoding="utf-8")))


def refresh(client: KrakenClient, path: Path, source: str = "",
            now: Callable[[], float] = time.time) -> InstrumentTable:
    """Fetch Kraken's Assets + AssetPairs through `client`, check they parse, write them with the fetch time
    (atomically: a reader never sees half a file), and return the table."""
    raw = client.instrument_catalog_raw()
    doc = {"_note": "Kraken's public Assets and AssetPairs answers, untouched; written by market.instruments.refresh",
           "source": source, "fetched_at": dt.datetime.fromtimestamp(now(), dt.UTC).isoformat(timespec="seconds"),
           "Assets": raw["Assets"], "AssetPairs": raw["AssetPairs"]}
    table = parse_document(doc)
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8"))
    return table


def refresh_or_cached(client: KrakenClient, cache: Path, source: str = "",
                      now: Callable[[], float] = time.time) -> tuple[InstrumentTable, str]:
    """The live trader's table: fresh from the exchange (written to `cache`), else the last cached one;
    returns the table and where it came from. InstrumentsUnavailable when neither is possible."""
    from market.errors import ExchangeError

    try:
        return refresh(client, cache, source, now), f"fetched from {source or 'the exchange'}"
    except (ExchangeError, KeyError, TypeError, ValueError) as err:  # unreachable, or a garbled answer
        if not cache.is_file():
            raise InstrumentsUnavailable(
                f"cannot fetch Kraken's AssetPairs from {source or 'the exchange'} ({err}) and there is no cached "
                f"instrument table at {cache}; check KRAKENFLOW_KRAKEN_URL and the network, then start again") from None
        cached = load(cache)
        return cached, f"cached at {cache}, fetched {cached.fetched_at or 'at an unknown time'} ({err})"


def main(argv: list[str] | None = None) -> int:
    """`python -m market.instruments [--url URL] [--out FILE]`: rewrite the bundled snapshot from Kraken."""
    parser = argparse.ArgumentParser(prog="python -m market.instruments", description=main.__doc__)
    parser.add_argument("--url", default="https://api.kraken.com", help="Kraken or the emulator")
    parser.add_argument("--out", type=Path, default=Path(str(resources.files("market").joinpath(SNAPSHOT))))
    args = parser.parse_args(argv)
    from market.kraken import public_client

    table = refresh(public_client(args.url), args.out, source=args.url)
    print(f"{len(table.instruments)} pairs, {len(table.assets)} assets from {args.url} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
