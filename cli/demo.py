"""`krakenflow demo`: the whole product on bundled real candles, with a summary of where to look."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.panel import Panel

from core.settings import Settings

CHALLENGER_EXPERIMENT = {"num_leaves": 31, "learning_rate": 0.05}
"""The demo's challenger: the same pipeline with two LightGBM knobs changed (a DVC-style experiment)."""


def _experiment_params(params_file: Path, home: Path) -> Path:
    raw = yaml.safe_load(params_file.read_text())
    raw["train"].update(CHALLENGER_EXPERIMENT)
    path = home / "demo-challenger-params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_demo(console: Console, params_file: Path) -> None:
    from cli.app import _params, _print_ab, _print_pipeline, _print_trained, print_trade_report
    from flows.pipeline import ab_promote_flow, pipeline_flow, retrain_flow
    from trader.replay import paper_replay

    started = time.monotonic()
    settings = Settings()
    params = _params(params_file)
    data_dir = str(settings.data_dir)
    console.rule("1/3 pipeline (Prefect flow): import → quality gate → features → train → evaluate → MLflow → A/B")
    first = pipeline_flow(params_file=str(params_file), data_dir=data_dir)
    _print_pipeline(first)
    console.rule(f"2/3 retrain a challenger ({CHALLENGER_EXPERIMENT}) → A/B shadow run vs @champion")
    experiment = _experiment_params(params_file, settings.ensure_home())
    _print_trained(retrain_flow(params_file=str(experiment), data_dir=data_dir))
    ab = ab_promote_flow(params_file=str(experiment), data_dir=data_dir)
    _print_ab(ab)
    console.rule("3/3 trader: @champion replayed on unseen candles (paper, SimulatedBroker, Kraken taker fees)")
    report = paper_replay(params, [], "champion", None)
    print_trade_report(report)
    home = settings.home.resolve()
    console.print(Panel.fit(
        f"champion: {params.registry.model_name} v{report.model_version}   A/B: {ab['decision']} "
        f"(p={ab['p_value']:.3g})   paper P&L: {report.result.metrics['final_equity'] - report.starting_cash:+,.2f} USD"
        f"   took {time.monotonic() - started:.0f} s\n\n"
        f"MLflow UI:   .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}  → http://127.0.0.1:5000\n"
        f"Prefect UI:  PREFECT_HOME={home / 'prefect'} .venv/bin/prefect server start  → http://127.0.0.1:4200\n"
        f"Reports:     {settings.data_dir / 'reports'} (metrics.json, equity.csv, validation.json)",
        title="krakenflow demo done",
    ))
