"""`krakenflow demo`: the whole product on bundled real candles, with a summary of where to look."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from core.settings import Settings


def run_demo(console: Console, params_file: Path) -> None:
    from cli.app import _params, _print_pipeline, print_trade_report

    started = time.monotonic()
    settings = Settings()
    params = _params(params_file)
    console.rule("1/2 training pipeline (Prefect flow): import → quality gate → features → train → evaluate → MLflow")
    from flows.pipeline import pipeline_flow

    result = pipeline_flow(params_file=str(params_file), data_dir=str(settings.data_dir))
    _print_pipeline(result)
    console.rule("2/2 trader: champion replayed on unseen candles (paper, SimulatedBroker, Kraken taker fees)")
    from trader.replay import paper_replay

    report = paper_replay(params, [], "champion", None)
    print_trade_report(report)
    home = settings.home.resolve()
    console.print(Panel.fit(
        f"champion: {params.registry.model_name} v{result['promotion']['champion']}   "
        f"paper P&L: {report.result.metrics['final_equity'] - report.starting_cash:+,.2f} USD   "
        f"took {time.monotonic() - started:.0f} s\n\n"
        f"MLflow UI:   .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}  → http://127.0.0.1:5000\n"
        f"Prefect UI:  PREFECT_HOME={home / 'prefect'} .venv/bin/prefect server start  → http://127.0.0.1:4200\n"
        f"Reports:     {settings.data_dir / 'reports'} (metrics.json, equity.csv, validation.json)",
        title="krakenflow demo done",
    ))
