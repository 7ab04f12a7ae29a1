"""Bad settings give one clear error line and exit 2 — never a traceback, a stall, or a wrong diagnosis
(issue I defect 9). Each runs the real `krakenflow` command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from tests_support import EMULATOR_KEY, EMULATOR_SECRET

from trader.ledger import Ledger, LedgerLocked, normalize_url

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql://root@127.0.0.1:5432/test"


def krakenflow(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, float]:
    full_env = {**os.environ, "KRAKENFLOW_STATE_DIR": str(tmp_path / "home"), "COLUMNS": "200",
                "KRAKENFLOW_KRAKEN_KEY": EMULATOR_KEY, "KRAKENFLOW_KRAKEN_SECRET": EMULATOR_SECRET, **env}
    full_env.pop("PREFECT_API_URL", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def assert_clear(code: int, out: str, *needles: str) -> None:
    assert code == 2, out[-2000:]
    assert "Traceback" not in out and "╭" not in out, out[-2000:]
    for needle in needles:
        assert needle in out, out[-2000:]


def test_unreachable_kraken_is_not_called_a_withdraw_key(tmp_path: Path) -> None:
    code, out, _ = krakenflow(tmp_path, "trade", "--mode", "live",
                              KRAKENFLOW_KRAKEN_URL=f"http://127.0.0.1:{closed_port()}")
    assert_clear(code, out, "cannot reach Kraken")
    assert "withdraw" not in out


@pytest.mark.parametrize("url", ["not-a-url", "ftp://example.com", "http://"])
def test_a_malformed_kraken_url_names_the_setting(tmp_path: Path, url: str) -> None:
    code, out, _ = krakenflow(tmp_path, "trade", "--mode", "live", KRAKENFLOW_KRAKEN_URL=url)
    assert_clear(code, out, "KRAKENFLOW_KRAKEN_URL", "is not an http(s) URL")


def test_ingest_from_an_unreachable_url_is_one_line_not_a_ccxt_traceback(tmp_path: Path) -> None:
    code, out, _ = krakenflow(tmp_path, "ingest", "--url", f"http://127.0.0.1:{closed_port()}", "--pair", "XRP/USD")
    assert code != 0 and "Traceback" not in out and "╭" not in out, out[-2000:]
    assert "unreachable" in out and len(out.splitlines()) < 15, out


def test_a_bad_ledger_url_names_the_setting(tmp_path: Path) -> None:
    code, out, _ = krakenflow(tmp_path, "trade", "--mode", "live", KRAKENFLOW_LEDGER_URL="nonsense",
                              KRAKENFLOW_KRAKEN_URL=f"http://127.0.0.1:{closed_port()}")
    assert_clear(code, out, "KRAKENFLOW_LEDGER_URL", "not a database URL")


def test_an_unreachable_mlflow_fails_fast_naming_it(tmp_path: Path) -> None:
    code, out, took = krakenflow(tmp_path, "trade", "--mode", "paper",
                                 KRAKENFLOW_MLFLOW_TRACKING_URI=f"http://127.0.0.1:{closed_port()}")
    assert_clear(code, out, "cannot reach the MLflow server")
    assert "no model version" not in out and took < 60, (took, out)


@pytest.mark.parametrize("kind", ["directory", "binary"])
def test_a_params_file_that_is_not_yaml_text(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "params"
    if kind == "directory":
        target.mkdir()
    else:
        target.write_bytes(bytes(range(256)) * 8)
    code, out, _ = krakenflow(tmp_path, "trade", "--mode", "paper", "--params", str(target))
    assert_clear(code, out, str(target))


def test_a_status_port_in_use_is_an_error_not_a_silent_page(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, _ = krakenflow(tmp_path, "trade", "--mode", "live", "--status-port", str(port), "--max-polls", "1",
                                  KRAKENFLOW_STATE_DIR=str(settings.state_dir),
                                  KRAKENFLOW_KRAKEN_URL=settings.kraken_url,
                                  KRAKENFLOW_LEDGER_URL=str(settings.ledger_uri), KRAKENFLOW_KRAKEN_THROTTLE="false")
    assert_clear(code, out, f"cannot serve the status page on 127.0.0.1:{port}")
    assert f"http://127.0.0.1:{port}/" not in out.replace(f"127.0.0.1:{port} (", "")


def _postgres_up() -> bool:
    try:
        with create_engine(normalize_url(PG)).connect():
            return True
    except Exception:
        return False


@pytest.fixture
def pg_schema() -> Iterator[str]:
    if not _postgres_up():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    schema = f"kf_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(PG))  # the admin side names its driver; the ledger gets the bare form
    with admin.begin() as conn:
        conn.execute(text(f"create schema {schema}"))
    yield schema
    with admin.begin() as conn:
        conn.execute(text(f"drop schema {schema} cascade"))
    admin.dispose()


def test_the_documented_postgresql_url_works_and_locks(pg_schema: str) -> None:
    """`postgresql://…` as the README writes it (no driver named), one trader per ledger."""
    url = f"{PG}?options=-csearch_path%3D{pg_schema}"
    first = Ledger(url, exclusive=True)
    first.audit("hello", {})
    with pytest.raises(LedgerLocked, match="another krakenflow trader"):
        Ledger(url, exclusive=True)
    first.close()
    again = Ledger(url, exclusive=True)
    assert again.audit_trail() == [("hello", {})]
    again.close()


def test_a_pair_kraken_does_not_list_stops_live_start_up_with_its_name(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["pairs"], raw["data"]["sample"] = ["FOO/USD"], {}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    code, out, _ = krakenflow(tmp_path, "trade", "--mode", "live", "--max-polls", "1", "--params", str(params),
                              KRAKENFLOW_STATE_DIR=str(settings.state_dir),
                              KRAKENFLOW_KRAKEN_URL=settings.kraken_url,
                              KRAKENFLOW_LEDGER_URL=str(settings.ledger_uri), KRAKENFLOW_KRAKEN_THROTTLE="false")
    assert_clear(code, out, "FOO/USD")


@pytest.mark.parametrize("command", [["stage", "promote"], ["promote"]])
def test_promote_without_a_challenger_says_what_to_run(tmp_path: Path, command: list[str]) -> None:
    """`stage promote` used to crash with AttributeError (it called a function that does not exist)."""
    code, out, _ = krakenflow(tmp_path, *command)
    assert_clear(code, out, "no @challenger", "krakenflow retrain")
