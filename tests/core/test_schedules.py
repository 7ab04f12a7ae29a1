"""params.yaml `schedules:`: deployment → cron, interval or null; nonsense is refused at load, naming the key."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from core.params import ParamsError, Schedule, SchedulesParams, load_params, parse_params, parse_schedule

ROOT = Path(__file__).resolve().parents[2]


def _with_schedules(**schedules: object) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["schedules"] = {name.replace("_", "-"): value for name, value in schedules.items()}
    return raw


def test_defaults_are_todays_deployments_and_crons() -> None:
    expected = {"ingest-5m": "*/5 * * * *", "ingest-1h": "2 * * * *", "validate-hourly": "5 * * * *",
                "drift-hourly": "15 * * * *", "retrain-weekly": "0 3 * * 1", "ab-promote-daily": "30 4 * * *"}
    for schedules in (load_params(ROOT / "params.yaml").schedules, SchedulesParams()):
        when = schedules.by_deployment()
        assert {name: s.cron for name, s in when.items() if s.cron} == expected
        assert when["pipeline-manual"] == Schedule()
        assert all(s.interval is None for s in when.values())


def test_a_section_that_names_some_deployments_keeps_the_others_defaults() -> None:
    when = parse_params(_with_schedules(drift_hourly="30m", retrain_weekly=None)).schedules.by_deployment()
    assert when["drift-hourly"] == Schedule(interval=timedelta(minutes=30))
    assert when["retrain-weekly"] == Schedule()
    assert when["validate-hourly"] == Schedule(cron="5 * * * *")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("7d", 604_800),
                                               (" 10s ", 10)])
def test_interval_forms(text: str, seconds: int) -> None:
    assert parse_schedule(text) == Schedule(interval=timedelta(seconds=seconds))


@pytest.mark.parametrize("cron", ["0 3 * * 1", "*/5 * * * *", "5/15 * * * *", "0 0 * jan-mar mon-fri",
                                  "0 9-17/2 * * 1-5", "0 0 L * *", "0 0 * * 6#3", "0 0 * * L5", "0 0 ? * *",
                                  "0 0 * * 7", "@hourly", "@weekly", "0,30 3 1,15 * *"])
def test_cron_forms(cron: str) -> None:
    assert parse_schedule(cron) == Schedule(cron=cron)


@pytest.mark.parametrize("text", ["every tuesday", "0 3 * * 1 *", "* * * *", "61 * * * *", "0 24 * * *",
                                  "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8", "*/0 * * * *", "1,,3 * * * *",
                                  "H * * * *", "0 0 * * 1#6", "0 0 1W * *", "@reboot", "0s", "5 m", "1w", ""])
def test_nonsense_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^is '.*': (neither a cron expression|not a valid cron expression)"):
        parse_schedule(text)


def test_our_cron_check_agrees_with_prefects_croniter() -> None:
    """Core may not import Prefect, so it checks cron itself: what it accepts must be what the scheduler accepts."""
    from prefect._internal.schemas.validators import validate_cron_string

    accepted = ["0 3 * * 1", "*/5 * * * *", "5/15 * * * *", "0 0 * jan-mar mon-fri", "0 0 L * *", "0 0 * * 6#3",
                "0 0 * * L5", "0 0 ? * *", "0 0 * * 7", "0 0 * * 7-1", "@daily", "00 03 * * 01", "*/61 * * * *"]
    refused = ["61 * * * *", "0 24 * * *", "0 0 32 * *", "0 0 * * 8", "*/0 * * * *", "1,,3 * * * *",
               "H * * * *", "0 0 * * 1#6", "0 0 1W * *", "0 0 * * 5L", "0 0 L-2 * *", "@reboot", "every tuesday"]
    for cron in accepted:
        assert parse_schedule(cron).cron == validate_cron_string(cron)
    for cron in refused:
        with pytest.raises(ValueError):
            validate_cron_string(cron)
        with pytest.raises(ValueError):
            parse_schedule(cron)


def test_a_bad_cron_is_refused_at_load_naming_the_key(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text().replace('drift-hourly: "15 * * * *"', 'drift-hourly: "every tuesday"')
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=r"params\.yaml: schedules\.drift-hourly is 'every tuesday': neither a "
                                          r"cron expression .* nor an interval like 30s/5m/1h/7d"):
        load_params(tmp_path / "params.yaml")


def test_an_out_of_range_cron_field_is_named() -> None:
    with pytest.raises(ParamsError, match=r"schedules\.retrain-weekly is '0 25 \* \* 1': not a valid cron "
                                          r"expression: hour '25' is not 0-23"):
        parse_params(_with_schedules(retrain_weekly="0 25 * * 1"))


def test_an_unknown_deployment_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ParamsError, match=r"schedules names an unknown deployment 'drift-daily': the deployments "
                                          r"are ingest-5m, ingest-1h, validate-hourly, drift-hourly, retrain-weekly, "
                                          r"ab-promote-daily, pipeline-manual"):
        parse_params(_with_schedules(drift_daily="1d"))


@pytest.mark.parametrize(("value", "fix"), [(False, r"write null for manual runs only"),
                                            (30, r"an interval needs its unit \('30s', '30m', '30h'\)"),
                                            (["1h"], r"neither a cron expression")])
def test_a_schedule_that_is_not_text_says_what_to_write(value: object, fix: str) -> None:
    with pytest.raises(ParamsError, match=rf"schedules\.ab-promote-daily is .*{fix}"):
        parse_params(_with_schedules(ab_promote_daily=value))


def test_a_dumped_params_set_loads_again_with_its_schedules() -> None:
    """Jobs and tests write params back to YAML (model_dump): the deployment names must survive that."""
    from core.params import load_params, parse_params

    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    dumped = params.model_dump(mode="json")
    assert "drift-hourly" in dumped["schedules"]
    assert parse_params(dumped) == params
