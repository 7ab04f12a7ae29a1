"""The shipped systemd units run real krakenflow commands with options that exist (parsed by the CLI)."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from cli.app import app

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy").glob("*.service"))


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_every_component_has_a_unit() -> None:
    assert {u.name for u in UNITS} >= {"krakenflow-trader.service", "krakenflow-prefect.service",
                                       "krakenflow-worker.service", "krakenflow-watch.service"}


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_a_unit_runs_a_real_command_with_real_options_and_logs_to_the_journal(unit: Path) -> None:
    service = _unit(unit)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/.venv/bin/krakenflow"), argv
    group: Any = typer.main.get_command(app)
    command = group.commands[argv[1]]  # KeyError: the unit names a command that does not exist
    command.make_context(argv[1], argv[2:], resilient_parsing=False)  # click refuses unknown options/values
    assert service["StandardOutput"] == "journal" and service["SyslogIdentifier"] == unit.stem
    assert service["PrivateTmp"] == "true" and service["ProtectSystem"] == "strict"
