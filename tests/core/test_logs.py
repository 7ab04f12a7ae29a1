"""Structured logs: JSON lines or text, to a file, secrets redacted whichever logger wrote them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.logs import configure_logging

SECRET = "c2VjcmV0LWtyYWtlbi1rZXktdGhhdC1tdXN0LW5ldmVyLWxlYWs="


@pytest.fixture
def installed() -> Iterator[list[logging.Handler]]:
    """Whatever configure_logging installs is taken off the root logger again after the test."""
    handlers: list[logging.Handler] = []
    level = logging.getLogger().level
    yield handlers
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_krakenflow_handler", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_json_lines_carry_message_and_extras_with_secrets_redacted(tmp_path: Path, installed: list) -> None:
    log_file = tmp_path / "logs" / "trader.log"
    installed += configure_logging("INFO", json_lines=True, file=log_file, secrets=[SECRET])
    logging.getLogger("trader.service").info("poll %d: key %s", 7, SECRET, extra={"pair": "XRP/USD", "n": 2,
                                                                                  "note": f"k={SECRET}"})
    logging.getLogger("ccxt.base.exchange").warning("POST /0/private/AddOrder API-Key: %s", SECRET)
    try:
        raise RuntimeError(f"signature failed for {SECRET}")
    except RuntimeError:
        logging.getLogger("trader.live").exception("order failed")
    logging.getLogger("trader.service").debug("below the level: not written")
    lines = _lines(log_file)
    assert len(lines) == 3, lines
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == "poll 7: key ***" and first["pair"] == "XRP/USD" and first["n"] == 2
    assert first["note"] == "k=***" and first["level"] == "INFO" and first["logger"] == "trader.service"
    assert first["ts"].endswith("+00:00")
    assert second["message"] == "POST /0/private/AddOrder API-Key: ***"
    assert "RuntimeError: signature failed for ***" in third["exception"]
    assert SECRET not in log_file.read_text()


def test_text_lines_name_time_level_and_logger_and_reconfiguring_does_not_double(
        tmp_path: Path, installed: list) -> None:
    log_file = tmp_path / "trader.log"
    installed += configure_logging("INFO", file=log_file)
    installed += configure_logging("INFO", file=log_file)  # a second call replaces, never adds
    logging.getLogger("trader.reconcile").info("reconciled: %s", "clean")
    lines = _lines(log_file)
    assert len(lines) == 1, lines
    assert lines[0].endswith(" INFO    trader.reconcile: reconciled: clean") and "Z " in lines[0]


def test_third_party_chatter_stays_out_of_info(tmp_path: Path, installed: list) -> None:
    log_file = tmp_path / "trader.log"
    installed += configure_logging("INFO", file=log_file)
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection")
    logging.getLogger("urllib3.connectionpool").warning("Retrying after a reset")
    assert [line.rsplit(": ", 1)[-1] for line in _lines(log_file)] == ["Retrying after a reset"]


def test_an_unknown_level_names_the_option() -> None:
    with pytest.raises(ValueError, match=r"--log-level 'LOUD': use DEBUG, INFO, WARNING or ERROR"):
        configure_logging("LOUD")
