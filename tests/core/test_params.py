from pathlib import Path

import pytest
import yaml

from core.params import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[2]


def _raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_project_params_load_and_are_frozen() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.pairs == ("XRP/USD", "DOGE/USD")
    with pytest.raises(Exception, match="frozen"):
        params.train.num_leaves = 3  # type: ignore[misc]


def test_unknown_key_is_named() -> None:
    raw = _raw()
    raw["train"]["num_leafs"] = 31
    with pytest.raises(ParamsError, match=r"unknown key 'train\.num_leafs'"):
        parse_params(raw)


def test_wrong_type_names_key_and_value() -> None:
    raw = _raw()
    raw["train"]["num_leaves"] = "63a"
    with pytest.raises(ParamsError, match=r"train\.num_leaves .*'63a'"):
        parse_params(raw)


def test_missing_section_is_named() -> None:
    raw = _raw()
    del raw["fees"]
    with pytest.raises(ParamsError, match="missing key 'fees'"):
        parse_params(raw)


def test_exit_above_enter_threshold_is_refused() -> None:
    raw = _raw()
    raw["trade"]["exit_threshold"] = 0.9
    with pytest.raises(ParamsError, match="exit_threshold must not exceed enter_threshold"):
        parse_params(raw)


def test_missing_file_and_bad_yaml_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_digest_changes_with_any_knob() -> None:
    raw = _raw()
    a = parse_params(raw).digest()
    raw["label"]["horizon"] += 1
    assert parse_params(raw).digest() != a
