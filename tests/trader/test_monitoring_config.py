"""deploy/prometheus.yml, deploy/prometheus-alerts.yml and the Grafana dashboard read only metrics that exist:
every metric their PromQL names is exported by a real live trader's /metrics (on the Kraken emulator) or by
`krakenflow watch`'s registry; promtool accepts the config and the rules where it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_telemetry import live_session
from trader_helpers import PARAMS

from cli.app import _console_app
from core.alerts import Alerter
from core.settings import Settings
from flows.health import Watch
from market.emulator.server import EmulatorHandle, free_port
from trader.service import StopFlag, run, serve_status

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "krakenflow-dashboard.json"
RULES = DEPLOY / "prometheus-alerts.yml"
CONFIG = DEPLOY / "prometheus.yml"

PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself (per scrape target), not any exporter's."""
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"), "info": ("_info",), "gauge": ("",), "unknown": ("",),
            "stateset": ("",), "gaugehistogram": ("_bucket", "_gsum", "_gcount")}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or Grafana's `label_values(metric{…}, label)`) selects: what is
    left once strings, label matchers, ranges, grouping clauses, functions, keywords and numbers are gone."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r",\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", ")", expr) if "label_values" in expr else expr
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", expr):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", name):
            names.add(name)
    return names


def test_metric_names_are_found_in_promql() -> None:
    """The extractor itself (a wrong one would make the real test below pass on nothing)."""
    quantile = 'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{x="y(z)"}[5m]))) > 60'
    assert metric_names(quantile) == {"a_bucket"}
    assert metric_names("b > on (job, instance) group_left() c or absent(up{job=\"t\"})") == {"b", "c", "up"}
    assert metric_names("0.8 * d_ratio and bool e offset 5m") == {"d_ratio", "e"}
    assert metric_names('label_values(f_info{job="t"}, instance)') == {"f_info"}


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    panels = [p for row in board["panels"] for p in (row, *row.get("panels", []))]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    queries = [v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
               for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs + queries


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def exported(text: str) -> set[str]:
    """Every series name an exposition can carry, from its families' types (a labelled counter nobody has
    incremented yet has no sample, but Prometheus will see its samples once it has)."""
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in SUFFIXES[family.type]}


@pytest.fixture
def trader_metrics(fast_emulator: EmulatorHandle, booster_and_median, tmp_path: Path,  # type: ignore[no-untyped-def]
                   mlflow_template: Path) -> str:
    """/metrics of a live trader that polled a few candles, served as `trade --status-port` serves it (the
    console's app, the trader's registry answering /metrics)."""
    session = live_session(tmp_path, fast_emulator, booster_and_median, mlflow_template, alerter=Alerter())
    settings = Settings(state_dir=tmp_path, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    port = free_port()
    serve_status(session, "127.0.0.1", port,
                 make=lambda snap, view: _console_app(PARAMS, settings, snap, view, "trader"))
    run(session, 0, max_polls=3, after_poll=lambda _: fast_emulator.advance(1), stop=StopFlag())
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def test_every_metric_the_dashboard_and_the_alert_rules_read_is_exported(trader_metrics: str) -> None:
    watch = Watch("http://127.0.0.1:9", Alerter())  # its gauges exist from construction; nothing is probed
    available = exported(trader_metrics) | exported(generate_latest(watch.registry).decode()) | PROMETHEUS_OWN
    used = {"dashboard": set().union(*map(metric_names, dashboard_exprs())),
            "alert rules": set().union(*map(metric_names, rule_exprs()))}
    for where, names in used.items():
        assert len(names) > 15, f"the {where} read suspiciously few metrics: {sorted(names)}"
        missing = names - available
        assert not missing, f"the {where} read metrics nothing exports: {sorted(missing)}"
    everywhere = used["dashboard"] | used["alert rules"]
    assert {"krakenflow_halted", "krakenflow_drawdown_ratio", "krakenflow_zombie_flow_runs_total",
            "krakenflow_model_info", "krakenflow_poll_duration_seconds_bucket"} <= everywhere


def test_the_alert_rules_cover_what_an_operator_must_hear() -> None:
    names = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert {"KrakenflowTraderDown", "KrakenflowTraderHalted", "KrakenflowTraderUnhealthy", "KrakenflowPollsFailing",
            "KrakenflowStaleData", "KrakenflowDrawdownNearKillSwitch", "KrakenflowNoScheduledRun",
            "KrakenflowSchedulingUnhealthy", "KrakenflowZombieFlowRuns"} <= names


def test_prometheus_scrapes_the_ports_the_units_open() -> None:
    targets = {job["job_name"]: target for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]
               for static in job["static_configs"] for target in static["targets"]}
    trader_port = targets["krakenflow-trader"].rsplit(":", 1)[1]
    watch_port = targets["krakenflow-watch"].rsplit(":", 1)[1]
    assert f"--status-port {trader_port}" in (DEPLOY / "krakenflow-trader.service").read_text()
    assert f"--metrics-port {watch_port}" in (DEPLOY / "krakenflow-watch.service").read_text()
    assert f'"--status-port", "{trader_port}"' in (ROOT / "Dockerfile").read_text()
    assert f"127.0.0.1:{trader_port}:{trader_port}" in (ROOT / "compose.yaml").read_text()
    board = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/krakenflow.yml").read_text())
    assert {p["datasource"]["uid"] for p in board["panels"] if "datasource" in p} == {
        datasource["datasources"][0]["uid"]}


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not on PATH (Debian: apt-get install prometheus, or Prometheus' tarball)")
@pytest.mark.parametrize("what, path", [("config", CONFIG), ("rules", RULES)])
def test_promtool_accepts(what: str, path: Path) -> None:
    result = subprocess.run(["promtool", "check", what, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
