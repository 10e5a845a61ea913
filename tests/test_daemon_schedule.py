"""Schedules: `every` and `cron` parsed alike from the config and the command line,
cron weekdays read as crontab reads them, in the config's time zone, and bad ones
refused naming the option.

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.app.schedule import Schedule, human_duration
from sheetcrm.config import ScheduleSettings, load_config
from sheetcrm.daemon.scheduler import backoff_ticks
from sheetcrm.errors import ConfigError
from tests.support.daemon import cli, save


def test_cron_schedule_runs_at_start_then_on_the_config_time_zone(sample: Path,
                                                                   start) -> None:
    d = start("--cron", "0 9 1 1 *")  # 09:00 on 1 January, Asia/Seoul
    d.wait_runs(1)
    status = sample / ".sheetcrm/daemon.json"
    d.wait_for("the status file", lambda: status.exists())
    data = json.loads(cli(sample, "--json", "status").stdout)
    assert data["schedule"] == "cron 0 9 1 1 *"
    assert data["next_run_at"].endswith("-01-01T09:00:00+09:00")
    assert d.terminate()[0] == 0


def test_schedule_parsing_and_next_run() -> None:
    assert Schedule.parse("5m").describe() == "every 5m"
    assert Schedule.parse(None, "*/5 * * * *").describe() == "cron */5 * * * *"
    assert Schedule.parse(seconds=0.5).describe() == "every 0.5s"
    with pytest.raises(ConfigError, match="schedule.cron"):
        Schedule.parse(cron="*/5 * * *")
    with pytest.raises(ConfigError, match="schedule.every"):
        Schedule.parse("5x")
    assert human_duration(timedelta(minutes=90)) == "1h30m"
    assert [backoff_ticks(n) for n in range(7)] == [0, 0, 1, 3, 7, 11, 11]


@pytest.mark.parametrize(("key", "value"), [("every", "5x"), ("every", "0"), ("every", ""),
                                          ("cron", "*/5 * * *"), ("cron", "0 9 * * 8")])
def test_a_schedule_option_is_refused_as_the_config_refuses_it(sample: Path, key: str,
                                                               value: str) -> None:
    config_file = sample / "config.toml"
    config_file.write_text(config_file.read_text(encoding="utf-8")
                           + f'\n[schedule]\n{key} = "{value}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as in_config:
        load_config(config_file, {})
    with pytest.raises(ConfigError) as on_command_line:
        Schedule.parse(**{key: value}, where="option")
    assert on_command_line.value.path == f"option.{key}"
    reason = str(on_command_line.value).removeprefix(f"option.{key}: ")
    assert reason and reason in str(in_config.value)


def test_a_bad_every_option_exits_2_naming_the_option(sample: Path) -> None:
    result = cli(sample, "run", "--every", "5x")
    assert result.returncode == 2
    assert "--every" in result.stderr and "'5x' is not a duration" in result.stderr


# -- cron ------------------------------------------------------------------------------


MON, TUE, WED, THU, FRI, SAT, SUN = range(7)  # Python's weekday()
CRONTAB_WEEKDAYS = {  # crontab's weekday field -> the days it runs on
    "0": {SUN}, "1": {MON}, "2": {TUE}, "3": {WED}, "4": {THU}, "5": {FRI}, "6": {SAT},
    "7": {SUN}, "1-5": {MON, TUE, WED, THU, FRI}, "mon-fri": {MON, TUE, WED, THU, FRI},
    "Sat,Sun": {SAT, SUN}, "0,6": {SAT, SUN}, "5-7": {FRI, SAT, SUN},
    "fri-sun": {FRI, SAT, SUN}, "*/2": {SUN, TUE, THU, SAT}, "1-7/2": {MON, WED, FRI, SUN},
    "1,3-4": {MON, WED, THU}, "*": {MON, TUE, WED, THU, FRI, SAT, SUN},
}
SEOUL = ZoneInfo("Asia/Seoul")


def fire_times(schedule: Schedule, days: int = 21) -> list[datetime]:
    trigger = schedule.trigger(SEOUL)
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)  # a Monday
    fires: list[datetime] = []
    previous = None
    while True:
        fire = trigger.get_next_fire_time(previous, previous or now)
        if fire > now + timedelta(days=days):
            return fires
        fires.append(fire)
        previous = fire


@pytest.mark.parametrize(("weekday", "days"), CRONTAB_WEEKDAYS.items())
def test_a_cron_weekday_means_what_it_means_in_crontab(sample: Path, weekday: str,
                                                        days: set[int]) -> None:
    line = f"0 9 * * {weekday}"
    config_file = sample / "config.toml"
    config_file.write_text(config_file.read_text(encoding="utf-8")
                           + f'\n[schedule]\ncron = "{line}"\n', encoding="utf-8")
    from_config = Schedule.from_config(load_config(config_file, {}))
    from_option = Schedule.parse(cron=line, where="option")  # `sheetcrm run --cron`
    for schedule in (from_config, from_option):
        fires = fire_times(schedule)
        assert {f.weekday() for f in fires} == days
        assert {(f.hour, f.minute) for f in fires} == {(9, 0)}
        assert len(fires) == 3 * len(days)  # three weeks: every day it names, each week


def test_a_cron_day_and_weekday_both_given_fire_on_either_as_in_crontab() -> None:
    fires = fire_times(Schedule.parse(cron="0 9 13 * 5"), days=60)  # the 13th, and Fridays
    assert {f.day for f in fires if f.weekday() != FRI} == {13}
    assert sum(f.weekday() == FRI for f in fires) == 9
    assert datetime(2026, 12, 13, 9, tzinfo=SEOUL) in fires  # a Sunday


@pytest.mark.parametrize("line", ["0 9 * * 8", "0 9 * * fri-mon", "0 9 * * */0",
                                  "0 9 * * funday", "0 9 * *"])
def test_a_bad_cron_weekday_is_a_config_error_naming_it(line: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.cron: .*(weekday|fields)"):
        Schedule.parse(cron=line)
    with pytest.raises(ValueError, match="weekday|fields"):
        ScheduleSettings(cron=line)


def test_cron_on_the_command_line_and_in_status_reads_weekdays_as_crontab(
        sample: Path, start) -> None:
    d = start("--cron", "0 9 * * 0")  # Sundays only (APScheduler's own 0 is Monday)
    d.wait_runs(1)
    status = sample / ".sheetcrm/daemon.json"
    d.wait_for("the next run", lambda: status.exists()
               and json.loads(status.read_text())["next_run_at"])
    assert datetime.fromisoformat(json.loads(status.read_text())["next_run_at"]).weekday() \
        == SUN
    assert d.terminate()[0] == 0

    config = sample / "config.toml"
    save(config, config.read_text(encoding="utf-8") + '\n[schedule]\ncron = "0 9 * * 1-5"\n')
    friday = json.loads(cli(sample, "--now", "2026-11-27T10:00", "--json", "status").stdout)
    assert friday["next_run_at"] == "2026-11-30T09:00:00+09:00"  # Monday, not Saturday
