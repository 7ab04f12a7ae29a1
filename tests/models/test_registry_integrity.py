"""A registered version's artifacts are verified before LightGBM parses them (real MLflow on sqlite, real
LightGBM): logging records the stored files' sha256 and size, a corrupt file is refused with
ModelArtifactError instead of hanging, aborting or segfaulting the process, and a version logged before
checksums existed is parsed in a child process first."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from core.params import load_params
from features.spec import spec_from_params
from models import registry

SPEC = spec_from_params(load_params().features)


def truncated_with_junk(data: bytes) -> bytes:
    return data[: len(data) // 100] + b"\0" * 4096  # LightGBM's loader never returns on this (measured)


def random_bytes(data: bytes) -> bytes:
    return random.Random(0).randbytes(len(data))  # LightGBMError "Unknown model format"


def truncated_half(data: bytes) -> bytes:
    return data[: len(data) // 2]  # LightGBM's loader segfaults on this (measured)


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated+junk": truncated_with_junk, "random-bytes": random_bytes, "truncated-half": truncated_half}


@pytest.fixture
def tracking(tmp_path: Path, mlflow_template: Path) -> Path:
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    registry.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.fixture(scope="module")
def booster(xrp_1h: pd.DataFrame) -> lgb.Booster:
    X = SPEC.batch(xrp_1h.iloc[:3000])[SPEC.warmup :]  # type: ignore[arg-type]
    y = (np.diff(xrp_1h["close"].to_numpy()[SPEC.warmup : 3001]) > 0).astype(float)
    return lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1},
                     lgb.Dataset(X, label=y, feature_name=list(SPEC.names)), num_boost_round=5)


def _register(tracking: Path, booster: lgb.Booster) -> int:
    exp = registry.ensure_experiment("t", (tracking / "art").as_uri())
    run_id, uri = registry.log_training_run(experiment_id=exp, run_name="r", booster=booster,
                                            spec_json=SPEC.to_json(), params={}, metrics={}, tags={})
    return registry.register(uri, "kf", run_id, {"git_sha": "abc"})


def stored_file(artifact_root: Path, version: int, file_name: str = "model.lgb", name: str = "kf") -> Path:
    """The file as MLflow stored it on disk for that version (its logged model's artifacts)."""
    model_id = str(MlflowClient().get_model_version(name, str(version)).source).removeprefix("models:/")
    (path,) = artifact_root.rglob(f"{model_id}/artifacts/**/{file_name}")
    return path


def _forget_checksums(version: int, name: str = "kf") -> None:
    """What a version registered before checksums were recorded looks like: no tags on it or its run."""
    client = MlflowClient()
    mv = client.get_model_version(name, str(version))
    for sha_tag, size_tag in registry.CHECKSUM_TAGS.values():
        for tag in (sha_tag, size_tag):
            client.delete_model_version_tag(name, str(version), tag)
            client.delete_tag(str(mv.run_id), tag)


def test_logging_records_sha256_and_size_of_the_files_mlflow_stored(tracking: Path, booster: lgb.Booster) -> None:
    version = _register(tracking, booster)
    client = MlflowClient()
    mv = client.get_model_version("kf", str(version))
    run_tags = client.get_run(str(mv.run_id)).data.tags
    for file_name, (sha_tag, size_tag) in registry.CHECKSUM_TAGS.items():
        data = stored_file(tracking / "art", version, file_name).read_bytes()
        assert run_tags[sha_tag] == mv.tags[sha_tag] == hashlib.sha256(data).hexdigest()
        assert run_tags[size_tag] == mv.tags[size_tag] == str(len(data))
    assert mv.tags["git_sha"] == "abc"


def test_a_verified_model_loads_without_spawning_a_process(
        tracking: Path, booster: lgb.Booster, xrp_1h: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    version = _register(tracking, booster)

    def no_process(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the checksummed path must not start a process")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    loaded = registry.load_model("kf", str(version))
    X = SPEC.batch(xrp_1h.iloc[:1000])[-5:]  # type: ignore[arg-type]
    np.testing.assert_allclose(loaded.booster.predict(X), booster.predict(X))


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_model_file_is_refused_before_lightgbm_parses_it(
        tracking: Path, booster: lgb.Booster, corrupt: Callable[[bytes], bytes]) -> None:
    version = _register(tracking, booster)
    path = stored_file(tracking / "art", version)
    good = path.read_bytes()
    path.write_bytes(corrupt(good))
    started = time.monotonic()
    with pytest.raises(registry.ModelArtifactError) as err:
        registry.load_model("kf", str(version))
    assert time.monotonic() - started < 5  # refused, not hung in LightGBM's loader
    message = str(err.value)
    assert f"model kf v{version}" in message and str(path.as_posix()) in message
    assert f"expected {len(good)} bytes with sha256 {hashlib.sha256(good).hexdigest()}" in message
    assert f"found {path.stat().st_size} bytes" in message
    assert "krakenflow rollback" in message and "re-register" in message.lower()
    assert isinstance(err.value, ValueError)  # the CLI's `except (LookupError, ValueError)` prints it


def test_a_corrupt_feature_spec_is_refused(tracking: Path, booster: lgb.Booster) -> None:
    version = _register(tracking, booster)
    stored_file(tracking / "art", version, "feature_spec.json").write_text('{"features": [')
    with pytest.raises(registry.ModelArtifactError, match=r"feature_spec\.json is corrupt"):
        registry.load_model("kf", str(version))


def test_a_version_without_checksums_that_is_intact_still_loads(tracking: Path, booster: lgb.Booster) -> None:
    version = _register(tracking, booster)
    _forget_checksums(version)
    loaded = registry.load_model("kf", str(version))
    assert loaded.booster.num_trees() == booster.num_trees()
    assert not any(t in loaded.tags for pair in registry.CHECKSUM_TAGS.values() for t in pair)


@pytest.mark.parametrize(("corrupt", "symptom"), [
    (truncated_with_junk, "did not finish parsing"),
    (random_bytes, "cannot be read by LightGBM (lightgbm.basic.LightGBMError: Unknown model format"),
    (truncated_half, "crashed LightGBM (SIGSEGV)"),
], ids=CORRUPTIONS.keys())
def test_a_corrupt_version_without_checksums_is_refused_by_a_parse_in_a_child_process(
        tracking: Path, booster: lgb.Booster, corrupt: Callable[[bytes], bytes], symptom: str) -> None:
    version = _register(tracking, booster)
    _forget_checksums(version)
    path = stored_file(tracking / "art", version)
    path.write_bytes(corrupt(path.read_bytes()))
    started = time.monotonic()
    with pytest.raises(registry.ModelArtifactError) as err:
        # a sound file parses in ~1 s when idle; 12 s leaves room for a loaded CI box (6 s failed under load)
        registry.load_model("kf", str(version), parse_timeout_s=12)
    assert time.monotonic() - started < 40
    message = str(err.value)
    assert f"model kf v{version} has no recorded checksum" in message and path.as_posix() in message
    assert symptom in message and "the file is corrupt" in message and "krakenflow rollback" in message


def test_a_version_without_checksums_and_a_broken_spec_is_refused(tracking: Path, booster: lgb.Booster) -> None:
    version = _register(tracking, booster)
    _forget_checksums(version)
    stored_file(tracking / "art", version, "feature_spec.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(registry.ModelArtifactError, match=r"feature_spec\.json is not valid JSON"):
        registry.load_model("kf", str(version))
