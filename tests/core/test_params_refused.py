"""Nonsense parameters are refused at load with the key and the fix, never accepted (issue I)."""

import random
from pathlib import Path

import pytest
import yaml

from core.params import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "params.yaml").read_text()


def _raw() -> dict:
    return yaml.safe_load(TEXT)


def _with(section: str, key: str, value: object) -> dict:
    raw = _raw()
    raw[section][key] = value
    return raw


def _yaml(tmp_path: Path, old: str, new: str) -> Path:
    """The real params.yaml with one line edited, written out so the YAML loader itself is exercised."""
    assert old in TEXT, old
    path = tmp_path / "params.yaml"
    path.write_text(TEXT.replace(old, new, 1))
    return path


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith(needle)][nth - 1]


# ---- 1. infinite, NaN and absurdly huge numbers ---------------------------------------------------

@pytest.mark.parametrize(("old", "new", "key"), [
    ("starting_cash: 10000.0", "starting_cash: 1e400", r"trade\.starting_cash"),
    ("slippage_bps: 5.0", "slippage_bps: .inf", r"fees\.slippage_bps"),
    ("max_order_notional: 50000.0", "max_order_notional: 1.0e+400", r"risk\.max_order_notional"),
])
def test_infinite_number_in_yaml_is_refused(tmp_path: Path, old: str, new: str, key: str) -> None:
    with pytest.raises(ParamsError, match=key + r" input should be a finite number"):
        load_params(_yaml(tmp_path, old, new))


@pytest.mark.parametrize(("section", "key"), [
    ("label", "min_net_return"), ("fees", "slippage_bps"), ("trade", "starting_cash"),
    ("live", "reconcile_halt_usd"), ("train", "lambda_l2"),
])
def test_nan_is_refused(section: str, key: str) -> None:
    with pytest.raises(ParamsError, match=rf"{section}\.{key} input should be a finite number"):
        parse_params(_with(section, key, float("nan")))


def test_nan_from_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"label\.min_net_return input should be a finite number"):
        load_params(_yaml(tmp_path, "min_net_return: 0.0", "min_net_return: .nan"))


def test_float_far_too_large_for_an_int_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"label\.horizon is far too large"):
        load_params(_yaml(tmp_path, "horizon: 4", "horizon: 1.0e+26"))


@pytest.mark.parametrize(("section", "key", "value"), [
    ("fees", "slippage_bps", 5000.0),
    ("trade", "starting_cash", 1e15),
    ("risk", "max_order_notional", 1e300),
    ("features", "rsi_period", 10**9),
    ("features", "return_lags", [1, 10**9]),
    ("train", "n_estimators", 10**9),
    ("train", "num_leaves", 10**7),
    ("optuna", "n_trials", 10**9),
    ("promotion", "n_boot", 10**9),
    ("live", "dead_man_s", 10**7),
    ("drift", "recent_candles", 10**9),
])
def test_absurdly_huge_number_is_refused(section: str, key: str, value: object) -> None:
    with pytest.raises(ParamsError, match=rf"{section}\.{key}(\.\d+)? input should be less than or equal to"):
        parse_params(_with(section, key, value))


def test_huge_horizon_is_refused_even_with_a_matching_embargo() -> None:
    raw = _with("label", "horizon", 10**8)
    raw["cv"]["embargo"] = 10**8
    with pytest.raises(ParamsError, match=r"label\.horizon input should be less than or equal to 10000000"):
        parse_params(raw)


# ---- 2./3. pairs and data.sample -----------------------------------------------------------------

def test_empty_pairs_is_refused() -> None:
    raw = _raw()
    raw["pairs"], raw["data"]["sample"] = [], {}
    with pytest.raises(ParamsError, match=r"pairs names no pair: list at least one Kraken pair"):
        parse_params(raw)


def test_a_pair_needs_no_seed_file() -> None:
    raw = _raw()
    raw["pairs"], raw["data"]["sample"] = ["BTC/USD"], {}
    assert parse_params(raw).pairs == ("BTC/USD",)


def test_a_seed_for_a_pair_not_traded_is_refused_naming_both_fixes() -> None:
    raw = _raw()
    raw["data"]["sample"]["BTC/USD"] = "data/sample/binance/XRP_USDT-1h.parquet"
    with pytest.raises(ParamsError, match=r"data\.sample seeds BTC/USD, which is not in `pairs` \(XRP/USD, DOGE/USD\): "
                                          r"add it to `pairs` or remove its data.sample line"):
        parse_params(raw)


def test_a_pair_named_twice_is_refused() -> None:
    raw = _raw()
    raw["pairs"] = ["XRP/USD", "DOGE/USD", "XRP/USD"]
    with pytest.raises(ParamsError, match=r"pairs names XRP/USD more than once"):
        parse_params(raw)


@pytest.mark.parametrize("pair", ["xrp-usd", "FOO", "XRP/usd", "XRP-USD", "XRPUSD", "XRP/USD/EUR", " XRP/USD",
                                  "XRP/", "/USD", "XRP / USD"])
def test_malformed_pair_is_refused_naming_it_and_the_form(pair: str) -> None:
    raw = _raw()
    raw["pairs"] = ["XRP/USD", pair]
    raw["data"]["sample"] = {}
    with pytest.raises(ParamsError, match=rf"pairs pair '{pair}' is not in ccxt's unified form BASE/QUOTE"):
        parse_params(raw)


@pytest.mark.parametrize("pair", ["XRP/USD", "DOGE/USD", "BTC/USD", "1INCH/EUR", "T/USD"])
def test_well_formed_pair_is_accepted(pair: str) -> None:
    raw = _raw()
    raw["pairs"] = [pair]
    raw["data"]["sample"] = {pair: "data/sample/binance/XRP_USDT-1h.parquet"}
    assert parse_params(raw).pairs == (pair,)


# ---- 4. position sizing vs. the risk cap ----------------------------------------------------------

def test_position_fraction_above_risk_cap_is_refused() -> None:
    with pytest.raises(ParamsError, match=r"trade\.position_fraction \(0\.6\) is above risk\.max_position_fraction "
                                          r"\(0\.5\): the trader would size every buy above its own risk cap"):
        parse_params(_with("trade", "position_fraction", 0.6))


def test_position_fraction_at_the_risk_cap_is_accepted() -> None:
    assert parse_params(_with("trade", "position_fraction", 0.5)).trade.position_fraction == 0.5


# ---- 5. duplicate keys ----------------------------------------------------------------------------

def test_duplicate_section_is_refused_naming_key_and_line(tmp_path: Path) -> None:
    text = TEXT + "\ntrade:\n  enter_threshold: 0.6\n"
    path = tmp_path / "params.yaml"
    path.write_text(text)
    dup, first = _line_of(text, "trade:", 2), _line_of(text, "trade:")
    with pytest.raises(ParamsError, match=rf"duplicate key 'trade' on line {dup} \(first on line {first}\)"):
        load_params(path)


@pytest.mark.parametrize(("line", "repeat"), [
    ("  enter_threshold: 0.5", "  enter_threshold: 0.6"),
    ("    XRP/USD: data/sample/binance/XRP_USDT-1h.parquet", "    XRP/USD: data/sample/binance/DOGE_USDT-1h.parquet"),
])
def test_duplicate_key_inside_a_section_is_refused(tmp_path: Path, line: str, repeat: str) -> None:
    path = _yaml(tmp_path, line, f"{line}\n{repeat}")
    key = repeat.split(":")[0].strip()
    dup = _line_of(path.read_text(), f"{key}:", 2)
    with pytest.raises(ParamsError, match=rf"duplicate key '{key}' on line {dup}"):
        load_params(path)


def test_a_key_overriding_a_yaml_merge_is_not_a_duplicate(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "  holdout_fraction: 0.2", "  <<: {holdout_fraction: 0.3}\n  holdout_fraction: 0.25")
    assert load_params(path).split.holdout_fraction == 0.25


# ---- 6. booleans where numbers belong -------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "key"), [
    ("taker: 0.004", "taker: true", r"fees\.taker"),
    ("n_folds: 4", "n_folds: yes", r"cv\.n_folds"),
    ("starting_cash: 10000.0", "starting_cash: on", r"trade\.starting_cash"),
    ("return_lags: [1, 4, 24]", "return_lags: [1, yes, 24]", r"features\.return_lags"),
    ("timeout_s: null", "timeout_s: true", r"optuna\.timeout_s"),
])
def test_boolean_for_a_number_is_refused(tmp_path: Path, old: str, new: str, key: str) -> None:
    with pytest.raises(ParamsError, match=key + " must be a number, not a boolean"):
        load_params(_yaml(tmp_path, old, new))


@pytest.mark.parametrize("value", ["true", "yes", "false"])
def test_a_real_bool_field_still_takes_booleans(tmp_path: Path, value: str) -> None:
    params = load_params(_yaml(tmp_path, "volume_tiers: false", f"volume_tiers: {value}"))
    assert params.fees.volume_tiers is (value != "false")


# ---- 7. not a text file ---------------------------------------------------------------------------

def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="is a directory"):
        load_params(tmp_path)


@pytest.mark.parametrize("blob", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89",
    random.Random(0).randbytes(4096),
    ("# café\n" + TEXT).encode("cp1252", errors="replace"),  # edited in a Windows-1252 editor
])
def test_file_that_is_not_utf8_is_refused(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(blob)
    with pytest.raises(ParamsError, match="not UTF-8 text"):
        load_params(path)


def test_utf8_binary_with_control_bytes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(b"\x00\x01\x02trade: 1\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_repository_params_stay_valid() -> None:
    assert load_params(ROOT / "params.yaml").pairs == ("XRP/USD", "DOGE/USD")
