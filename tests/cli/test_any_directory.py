"""`krakenflow` works from any directory (issue J.6): the project home is named (--home, KRAKENFLOW_HOME) or
found (the nearest folder up with a params.yaml, else the source checkout), and everything it reads and
writes is under that home, never under the current directory. Each test runs the real command in a
subprocess whose current directory is outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
XRP = Path("data/sample/binance/XRP_USDT-1h.parquet")


def krakenflow(cwd: Path, *args: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KRAKENFLOW_")}
    done = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", *args], cwd=cwd,
                          env={**clean, "COLUMNS": "200", **env}, capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout + done.stderr


def project(folder: Path) -> Path:
    """A copy of the repository's project with one pair: params.yaml (its seed file relative, as shipped) and
    that bundled file."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["pairs"], raw["data"]["sample"] = ["XRP/USD"], {"XRP/USD": str(XRP)}
    (folder / XRP).parent.mkdir(parents=True)
    shutil.copy(ROOT / XRP, folder / XRP)
    (folder / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.slow  # a real prepare (quality gate): about 15 s
def test_home_option_runs_a_stage_on_that_project_from_any_directory(tmp_path: Path) -> None:
    home, elsewhere = project(tmp_path / "project"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out = krakenflow(elsewhere, "--home", "../project", "stage", "prepare")
    assert code == 0, out[-3000:]
    assert (home / "data" / "validated" / "XRP-USD-1h.parquet").stat().st_size > 0
    assert list((home / "data" / "store" / "kraken" / "XRP-USD" / "1h").glob("*.parquet"))
    assert (home / ".krakenflow").is_dir()  # the state folder is the project's too
    assert tree(elsewhere) == []


@pytest.mark.slow
def test_the_project_is_found_from_a_subfolder(tmp_path: Path) -> None:
    home = project(tmp_path / "project")
    notebooks = home / "notebooks" / "2026"
    notebooks.mkdir(parents=True)
    code, out = krakenflow(notebooks, "stage", "prepare")
    assert code == 0, out[-3000:]
    assert (home / "data" / "validated" / "XRP-USD-1h.parquet").exists()
    assert tree(home / "notebooks") == ["2026"]


def test_a_params_file_names_its_folder_as_the_project_when_none_is_around(tmp_path: Path) -> None:
    home, elsewhere = project(tmp_path / "project"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out = krakenflow(elsewhere, "dashboard", "--params", "../project/params.yaml")
    assert code == 2 and "Traceback" not in out, out[-3000:]
    assert f"no ledger at sqlite:///{home / '.krakenflow' / 'ledger.db'}" in " ".join(out.split()), out


def test_no_project_is_a_clear_error_naming_the_fix(tmp_path: Path) -> None:
    empty, cwd = tmp_path / "empty", tmp_path / "cwd"
    empty.mkdir(), cwd.mkdir()
    code, out = krakenflow(cwd, "stage", "prepare", KRAKENFLOW_HOME=str(empty))
    flat = " ".join(out.split())  # Rich wraps long lines
    assert code == 2, out
    assert "Traceback" not in out and "╭" not in out, out
    assert f"no params.yaml in {empty}" in flat and "--home DIR" in flat and "--params FILE" in flat, flat
    assert tree(empty) == [] and tree(cwd) == []  # nothing written anywhere


def test_help_and_version_work_with_no_project_anywhere(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = krakenflow(tmp_path, "emulator", "--help", KRAKENFLOW_HOME=str(empty))
    assert code == 0 and "Kraken emulator" in out and "--data" in out, out
    code, out = krakenflow(tmp_path, "--version", KRAKENFLOW_HOME=str(empty))
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert code == 0 and out.strip() == f"{expected['name']} {expected['version']}", out
    code, out = krakenflow(tmp_path, "--help")
    assert code == 0 and "--install-completion" in out and "--home" in out, out


def test_validate_a_file_from_any_directory(tmp_path: Path) -> None:
    shutil.copy(ROOT / XRP, tmp_path / XRP.name)
    code, out = krakenflow(tmp_path, "validate", XRP.name)  # no project here: the source checkout's params.yaml
    assert code == 0, out[-3000:]
    assert f"{XRP.name} (parquet, 1h): passed" in " ".join(out.split()), out
    assert tree(tmp_path) == [XRP.name]


def test_ingest_takes_from_and_keeps_since_as_a_hidden_alias(tmp_path: Path) -> None:
    code, out = krakenflow(tmp_path, "ingest", "--help")
    assert code == 0 and "--from" in out and "--since" not in out, out
    for option in ("--from", "--since"):
        code, out = krakenflow(tmp_path, "ingest", option, "someday", "--url", "http://127.0.0.1:9")
        assert code == 2 and "--from 'someday' is not a date/time" in out and "Traceback" not in out, out
