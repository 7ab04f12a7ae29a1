"""A flow run that fails tells a person: the on_failure hook's alert reaches a local receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_a_failed_flow_run_sends_an_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          alert_receiver: Any) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import validate_flow

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["sample"] = {}  # no seed file and an empty store: prepare fails naming the ingest command
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("KRAKENFLOW_STATE_DIR", str(tmp_path / "home"))
    with prefect_test_harness(server_startup_timeout=180):
        state = validate_flow(params_file=str(tmp_path / "params.yaml"), data_dir=str(tmp_path / "data"),
                              home=str(tmp_path), return_state=True)
    assert state.is_failed()
    alert = alert_receiver.wait_for("flow run krakenflow-validate/")
    assert alert["title"].endswith(" failed") and alert["type"] == "warning"
    assert "krakenflow ingest --pair XRP/USD" in alert["message"] and "Prefect UI" in alert["message"]
