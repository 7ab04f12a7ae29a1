"""Job `drift`: drift check of the champion: its training window (reference) vs the store's newest candles (current), on
the model's own features and its prediction. The HTML report goes to data/reports and to MLflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from core.alerts import Alert, alerter_from_settings
from core.params import Params
from core.settings import Settings
from models import registry
from models.dataset import columns
from pipeline.candles import read_frames
from pipeline.paths import DataPaths
from quality.drift import DriftDecision, run_drift_report
from trader.model import trading_model

PREDICTION = "prediction"


def _feature_frame(frame: pd.DataFrame, loaded: registry.LoadedModel) -> pd.DataFrame:
    spec = trading_model(loaded).spec  # refuses a spec-hash mismatch
    X = spec.batch(columns(frame))[spec.warmup :]
    out = pd.DataFrame(X, columns=list(spec.names))
    out.insert(0, "date", frame["date"].to_numpy()[spec.warmup :])
    out = out.loc[pd.Series(np.isfinite(X).all(axis=1))].reset_index(drop=True)
    out[PREDICTION] = loaded.booster.predict(out[list(spec.names)].to_numpy())
    return out


def _keep_history(paths: DataPaths, decision: DriftDecision, version: int, html: Path) -> None:
    """Every check, not just the last one: its report copied under reports/drift/ and a line in
    reports/drift/history.jsonl (the console's drift-over-time chart)."""
    folder = paths.reports / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = pd.Timestamp.now(tz="UTC")
    kept = folder / f"drift-{stamp:%Y%m%dT%H%M%S}-v{version}.html"
    shutil.copyfile(html, kept)
    line = {"at": stamp.isoformat(), "model_version": version, "share": decision.share,
            "drifted": decision.drifted, "reason": decision.reason, "report": kept.name}
    with (folder / "history.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def check_drift(params: Params, paths: DataPaths, settings: Settings) -> DriftDecision:
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    loaded = registry.load_model(params.registry.model_name, "champion")
    start, end = pd.Timestamp(loaded.tags["train_start"]), pd.Timestamp(loaded.tags["train_end"])
    reference, current = [], []
    for frame in read_frames(params, paths).values():
        table = _feature_frame(frame, loaded)
        reference.append(table[(table["date"] >= start) & (table["date"] <= end)])
        current.append(table.tail(params.drift.recent_candles))
    columns = [*loaded.spec["names"], PREDICTION]
    html = paths.reports / "drift.html"
    decision = run_drift_report(pd.concat(reference), pd.concat(current), columns, params.drift, html)
    registry.log_run_artifact(loaded.run_id, html, "drift")
    _keep_history(paths, decision, loaded.version, html)
    registry.tag_version(params.registry.model_name, loaded.version,
                         {"drift_verdict": "drift" if decision.drifted else "no_drift",
                          "drift_share": f"{decision.share:.3f}"})
    if decision.drifted:
        alerter_from_settings(settings).send(Alert(
            "drift", "warning", f"drift on {params.registry.model_name} v{loaded.version}",
            f"{decision.reason} (report {html})"))
    return decision
