from pathlib import Path

import pytest

from core.settings import CHECKOUT, ProjectNotFound, Settings, find_home

ROOT = Path(__file__).resolve().parents[2]
LOCATIONS = ("KRAKENFLOW_HOME", "KRAKENFLOW_STATE_DIR", "KRAKENFLOW_DATA_DIR", "KRAKENFLOW_PARAMS_FILE")


@pytest.fixture
def no_locations(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*LOCATIONS, "KRAKENFLOW_MLFLOW_TRACKING_URI", "KRAKENFLOW_LEDGER_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("no_locations")
def test_defaults_are_embedded_sqlite_in_the_project_found_from_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "tests" / "core")
    s = Settings()
    assert s.home == ROOT and s.params_file == ROOT / "params.yaml" and s.data_dir == ROOT / "data"
    assert s.state_dir == ROOT / ".krakenflow"
    assert s.tracking_uri == f"sqlite:///{ROOT / '.krakenflow' / 'mlflow.db'}"
    assert s.ledger_uri == f"sqlite:///{ROOT / '.krakenflow' / 'ledger.db'}"
    assert s.prefect_home == ROOT / ".krakenflow" / "prefect"


@pytest.mark.usefixtures("no_locations")
def test_relative_locations_from_the_environment_are_relative_to_the_home(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRAKENFLOW_HOME", "project")  # itself relative to the current directory
    monkeypatch.setenv("KRAKENFLOW_STATE_DIR", "state")
    monkeypatch.setenv("KRAKENFLOW_DATA_DIR", str(tmp_path / "elsewhere"))
    s = Settings()
    assert s.home == tmp_path / "project" and s.state_dir == tmp_path / "project" / "state"
    assert s.data_dir == tmp_path / "elsewhere" and s.params_file == tmp_path / "project" / "params.yaml"


def test_the_nearest_folder_with_params_yaml_is_the_home(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("")
    (tmp_path / "inner" / "deeper").mkdir(parents=True)
    (tmp_path / "inner" / "params.yaml").write_text("")
    assert find_home(tmp_path / "inner" / "deeper", checkout=None) == tmp_path / "inner"
    assert find_home(tmp_path, checkout=None) == tmp_path


def test_without_a_project_around_a_given_params_file_then_the_checkout_is_the_home(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    assert find_home(tmp_path, Path("project/params.yaml"), checkout=None) == tmp_path / "project"
    assert find_home(tmp_path, checkout=CHECKOUT) == CHECKOUT == ROOT


def test_no_project_anywhere_names_the_folder_and_the_fixes(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound) as err:
        find_home(tmp_path, checkout=tmp_path / "not-a-checkout")
    assert str(err.value) == (f"no params.yaml in {tmp_path} or its parents: pass --home DIR, set KRAKENFLOW_HOME, "
                              "or --params FILE")


def test_env_overrides_and_secret_is_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKENFLOW_KRAKEN_SECRET", "c2VjcmV0LWNhbmFyeQ==")
    monkeypatch.setenv("KRAKENFLOW_MLFLOW_TRACKING_URI", "postgresql://root@127.0.0.1/test")
    s = Settings()
    assert s.tracking_uri == "postgresql://root@127.0.0.1/test"
    assert "c2VjcmV0LWNhbmFyeQ" not in repr(s) and "c2VjcmV0LWNhbmFyeQ" not in str(s.model_dump())
    assert s.kraken_secret is not None and s.kraken_secret.get_secret_value() == "c2VjcmV0LWNhbmFyeQ=="
