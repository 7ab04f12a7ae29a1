"""The DVC stages by name (`krakenflow stage NAME`, what `dvc repro` runs): each is one job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from core.params import Params
from core.settings import Settings
from pipeline.evaluate import evaluate_model
from pipeline.featurize import featurize
from pipeline.paths import DataPaths
from pipeline.prepare import prepare
from pipeline.promote import run_ab
from pipeline.register import register
from pipeline.train import train

Stage = Callable[[Params, DataPaths, Settings], Any]

STAGES: dict[str, Stage] = {
    "prepare": lambda params, paths, _: [asdict(p) for p in prepare(params, paths)],
    "featurize": lambda params, paths, _: featurize(params, paths),
    "train": lambda params, paths, _: train(params, paths),
    "evaluate": lambda params, paths, _: evaluate_model(params, paths),
    # no alias: a repro or experiment is not the next A/B's challenger until `krakenflow challenge` says so
    "register": lambda params, paths, settings: register(params, paths, settings, alias=None, registered_by="dvc"),
    "promote": lambda params, paths, settings: run_ab(params, paths, settings).as_dict(),
}
