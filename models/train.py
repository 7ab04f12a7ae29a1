"""LightGBM training of the next-move direction classifier (net of fees), tuned by Optuna over purged
walk-forward CV. Deterministic by seed: seeded TPE, one trial at a time, deterministic LightGBM.

The search never sees the holdout: it scores each candidate on CV folds cut inside the training period
(models/cv.py), then the best candidate is refitted on the whole training period. The study lives in an
Optuna RDB (sqlite file by default, PostgreSQL by URL) named after everything that decides its result, so
rerunning the same search resumes or reuses the stored study instead of silently adding trials to it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
from sqlalchemy.engine import make_url

from core.params import CVParams, OptunaParams, TrainParams
from models.cv import Fold, epoch_ns
from models.dataset import Dataset
from models.evaluate import auc, log_loss

SEARCHED = ("num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "bagging_fraction", "lambda_l2")
"""TrainParams fields Optuna tunes; n_estimators, bagging_freq and seed stay as params.yaml says."""


def lgb_params(train: TrainParams) -> dict[str, Any]:
    """Booster parameters; deterministic + row-wise so `dvc repro` twice gives identical models. One
    thread: on our 2 shared cores OpenMP's spinning made 2 threads ~10× slower under load (0.6 s vs
    6.9 s for 300 rounds on 35 k rows, measured), and a single thread is bit-reproducible anywhere."""
    return {
        "objective": "binary",
        "metric": ["binary_logloss", "auc"],
        "num_leaves": train.num_leaves,
        "learning_rate": train.learning_rate,
        "min_child_samples": train.min_child_samples,
        "feature_fraction": train.feature_fraction,
        "bagging_fraction": train.bagging_fraction,
        "bagging_freq": train.bagging_freq,
        "lambda_l2": train.lambda_l2,
        "seed": train.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }


def _check_trainable(data: Dataset, what: str) -> None:
    if len(data) == 0:
        raise ValueError(f"no {what} rows: the data is shorter than the feature warm-up plus holdout")
    if len(np.unique(data.y)) < 2:
        raise ValueError(f"{what} labels hold a single class: no model can be learned from them")


def _lgb_dataset(data: Dataset, feature_names: Sequence[str]) -> lgb.Dataset:
    """No feature pre-filter: the same binned dataset is reused by trials with other min_child_samples."""
    return lgb.Dataset(data.X, label=data.y, feature_name=list(feature_names), free_raw_data=False,
                       params={"feature_pre_filter": False, "verbosity": -1})


def fit(data: Dataset, feature_names: tuple[str, ...], train: TrainParams) -> lgb.Booster:
    _check_trainable(data, "training")
    return lgb.train(lgb_params(train), _lgb_dataset(data, feature_names), num_boost_round=train.n_estimators)


# ---- cross-validation -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FoldScore:
    """Out-of-fold scores of one CV fold; logloss in nats, base_logloss = always predicting the fold's
    training base rate (the score a model without skill gets)."""

    logloss: float
    auc: float
    base_logloss: float
    train_rows: int
    test_rows: int


@dataclass(frozen=True)
class PreparedFolds:
    """Folds with their LightGBM datasets binned once and reused by every trial."""

    folds: tuple[Fold, ...]
    train_sets: tuple[lgb.Dataset, ...]
    data: Dataset


def prepare_folds(data: Dataset, feature_names: Sequence[str], folds: Sequence[Fold]) -> PreparedFolds:
    for k, fold in enumerate(folds, start=1):
        _check_trainable(data.take(fold.train), f"CV fold {k} training")
    sets = tuple(_lgb_dataset(data.take(f.train), feature_names) for f in folds)
    return PreparedFolds(tuple(folds), sets, data)


def score_fold(prepared: PreparedFolds, k: int, train: TrainParams) -> FoldScore:
    """Fit on fold k's (purged) training rows, score its test rows."""
    fold = prepared.folds[k]
    booster = lgb.train(lgb_params(train), prepared.train_sets[k], num_boost_round=train.n_estimators)
    y_test = prepared.data.y[fold.test]
    prob = np.asarray(booster.predict(prepared.data.X[fold.test]), dtype=np.float64)
    base = float(prepared.data.y[fold.train].mean())
    return FoldScore(log_loss(y_test, prob), auc(y_test, prob), log_loss(y_test, np.full(len(y_test), base)),
                     int(fold.train.size), int(fold.test.size))


def cross_validate(prepared: PreparedFolds, train: TrainParams) -> list[FoldScore]:
    return [score_fold(prepared, k, train) for k in range(len(prepared.folds))]


def cv_summary(scores: Sequence[FoldScore]) -> dict[str, float]:
    """Flat metrics for MLflow / DVC: mean and per-fold log loss and AUC (fold numbers from 1)."""
    out = {
        "cv_logloss": float(np.mean([s.logloss for s in scores])),
        "cv_auc": float(np.mean([s.auc for s in scores])),
        "cv_base_logloss": float(np.mean([s.base_logloss for s in scores])),
        "cv_folds": float(len(scores)),
    }
    for k, s in enumerate(scores, start=1):
        out[f"cv_fold{k}_logloss"] = s.logloss
        out[f"cv_fold{k}_auc"] = s.auc
    return out


# ---- Optuna search --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrialRecord:
    """One finished Optuna trial as the registry logs it (a child run of the training run). No timestamps:
    the train stage writes these next to the model, whose bytes must not change on a rerun.

    `running_logloss[k]` is the mean out-of-fold log loss (nats) after folds 1..k+1, what the pruner saw;
    `folds` holds every fold's scores of a complete trial (a pruned one stopped early: empty)."""

    number: int
    state: str  # "complete" | "pruned"
    params: dict[str, float | int]  # as Optuna suggested them (ints stay ints)
    objective: float | None  # mean CV log loss, nats; None when pruned
    running_logloss: tuple[float, ...]
    folds: tuple[FoldScore, ...]
    best: bool

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "params": self.params, "objective": self.objective,
                "running_logloss": list(self.running_logloss), "folds": [vars(f) for f in self.folds],
                "best": self.best}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TrialRecord:
        return cls(int(raw["number"]), str(raw["state"]), dict(raw["params"]),
                   None if raw["objective"] is None else float(raw["objective"]),
                   tuple(float(v) for v in raw["running_logloss"]), tuple(FoldScore(**f) for f in raw["folds"]),
                   bool(raw["best"]))


@dataclass(frozen=True)
class SearchResult:
    """What the search chose and how hard it looked: `n_trials` (complete + pruned) is what a deflated
    Sharpe ratio must be corrected for; `trials` are those trials in order of their number."""

    best: TrainParams
    scores: tuple[FoldScore, ...]
    n_trials: int
    n_pruned: int
    study_name: str
    storage: str  # password hidden
    trials: tuple[TrialRecord, ...] = ()


def _log_range(low: float, high: float, base: float) -> tuple[float, float]:
    return min(low, base), max(high, base)


def suggest(trial: optuna.Trial, base: TrainParams) -> TrainParams:
    """The search space; each range is widened to include params.yaml's value (always trial 0)."""
    lo, hi = _log_range(4, 128, base.num_leaves)
    lr_lo, lr_hi = _log_range(0.005, 0.2, base.learning_rate)
    mc_lo, mc_hi = _log_range(20, 1000, base.min_child_samples)
    l2_lo, l2_hi = _log_range(1e-3, 30.0, max(base.lambda_l2, 1e-3))
    return base.model_copy(update={
        "num_leaves": trial.suggest_int("num_leaves", int(lo), int(hi), log=True),
        "learning_rate": trial.suggest_float("learning_rate", lr_lo, lr_hi, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", int(mc_lo), int(mc_hi), log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", min(0.5, base.feature_fraction), 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", min(0.5, base.bagging_fraction), 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", l2_lo, l2_hi, log=True),
    })


def _objective(prepared: PreparedFolds, base: TrainParams) -> Any:
    """Mean out-of-fold log loss; the running mean is reported after each fold so the MedianPruner can
    stop a candidate that is already worse than the median of earlier trials at the same fold."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, base)
        scores: list[FoldScore] = []
        for k in range(len(prepared.folds)):
            scores.append(score_fold(prepared, k, params))
            running = float(np.mean([s.logloss for s in scores]))
            trial.report(running, k)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("folds", [vars(s) for s in scores])
        return running

    return objective


def study_name(prefix: str, base: TrainParams, cv: CVParams, opt: OptunaParams, data: Dataset) -> str:
    """Everything that decides the search result, hashed: same name ⇔ same search (so reuse is safe)."""
    digest = hashlib.sha256(json.dumps(
        [base.model_dump(mode="json"), cv.model_dump(mode="json"), opt.n_trials, opt.timeout_s],
        sort_keys=True).encode())
    for arr in (data.X, data.y, epoch_ns(data.date)):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return f"{prefix}-{digest.hexdigest()[:16]}"


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


def _sampler(seed: int, n_trials: int) -> optuna.samplers.TPESampler:
    """Seeded TPE; a quarter of the budget (3..10 trials) explores at random before TPE models it."""
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, n_trials // 4)))


def search(prepared: PreparedFolds, base: TrainParams, opt: OptunaParams, storage: str, name: str) -> SearchResult:
    """Run (or resume, or reuse) the study `name` in `storage` until it holds `opt.n_trials` finished
    trials or `opt.timeout_s` seconds pass; returns the best trial's params and fold scores."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage, study_name=name, direction="minimize", load_if_exists=True,
        sampler=_sampler(base.seed, opt.n_trials),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    if not study.trials:
        study.enqueue_trial({k: getattr(base, k) for k in SEARCHED})
    remaining = opt.n_trials - len(_finished(study))
    if remaining > 0:
        study.optimize(_objective(prepared, base), n_trials=remaining, timeout=opt.timeout_s, n_jobs=1,
                       catch=())
    return _result(study, base, name, storage)


def _result(study: optuna.Study, base: TrainParams, name: str, storage: str) -> SearchResult:
    complete = [t for t in _finished(study) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"Optuna study {name!r}: no trial completed (raise optuna.n_trials or timeout_s)")
    best = min(complete, key=lambda t: (t.value if t.value is not None else math.inf, t.number))
    scores = tuple(FoldScore(**f) for f in best.user_attrs["folds"])
    finished = _finished(study)
    return SearchResult(
        best=base.model_copy(update={k: best.params[k] for k in SEARCHED}), scores=scores,
        n_trials=len(finished), n_pruned=len(finished) - len(complete), study_name=name,
        storage=make_url(storage).render_as_string(hide_password=True),
        trials=tuple(_record(t, t.number == best.number) for t in sorted(finished, key=lambda t: t.number)))


def _record(trial: optuna.trial.FrozenTrial, best: bool) -> TrialRecord:
    complete = trial.state == optuna.trial.TrialState.COMPLETE
    steps = sorted(trial.intermediate_values)
    return TrialRecord(
        number=trial.number, state="complete" if complete else "pruned",
        params=dict(trial.params),
        objective=float(trial.value) if complete and trial.value is not None else None,
        running_logloss=tuple(float(trial.intermediate_values[k]) for k in steps),
        folds=tuple(FoldScore(**f) for f in trial.user_attrs.get("folds", [])) if complete else (), best=best)


def search_summary(result: SearchResult) -> dict[str, Any]:
    """What the train stage records: trial counts (for the deflated Sharpe), the study, chosen params."""
    return {
        "optuna_n_trials": float(result.n_trials), "optuna_n_pruned": float(result.n_pruned),
        "optuna_study": result.study_name, "optuna_storage": result.storage,
        **{f"best_{k}": float(getattr(result.best, k)) for k in SEARCHED},
    }
