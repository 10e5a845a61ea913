"""Alerts to the operator (``[alerts]``): each incident told once, and once when it ends,
through the real apprise to receivers on 127.0.0.1; an alert that cannot be delivered
never fails a run and is tried again; alert URLs never shown.

The daemon's alerts (across ticks and a restart, a rejected config) are in
``test_alerts_daemon.py``; the receivers and config helpers in ``tests.support.alerts``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.app.alerts import alert_unmatched
from sheetcrm.app.runner import sync
from sheetcrm.config import AlertSettings, load_config
from sheetcrm.errors import BackendError
from sheetcrm.redact import Redactor
from tests.support.alerts import (
    ENV,
    PASSWORD,
    TOKEN,
    add_alerts,
    receiver,
    set_send_limit,
    titles,
    unreachable_url,
    url_of,
)
from tests.support.daemon import STATE, cli
from tests.support.sample import DAY0, DAY0_SENDS, DAY0_SENDS_NO_ADDRESS, use_webhook
from tests.support.servers import Fault, Reply, WebhookServer

NOW = datetime.fromisoformat(DAY0).replace(tzinfo=ZoneInfo("Asia/Seoul"))
SECRETS = (TOKEN, PASSWORD)


@pytest.fixture(autouse=True)
def alert_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def alerts() -> Iterator[WebhookServer]:
    with receiver() as server:
        yield server


def run(folder: Path) -> str:
    """One ``sync`` of the sample in ``folder`` on day 0; its status."""
    return sync(load_config(folder / "config.toml", os.environ), NOW).status


def test_a_blast_radius_stop_is_alerted_once_over_many_runs_then_once_when_it_ends(
        sample: Path, alerts: WebhookServer) -> None:
    add_alerts(sample, url_of(alerts))
    set_send_limit(sample, 1)  # the sends due on day 0 are held as a whole
    assert [run(sample) for _ in range(3)] == ["sending_stopped"] * 3
    assert titles(alerts) == ["sheetcrm: sending stopped"]
    message = alerts.requests[0].json()["message"]
    assert f"blast-radius stop: {len(DAY0_SENDS)} sends due" in message
    assert "2026-11-23 10:00 KST" in message

    set_send_limit(sample, 500)
    assert run(sample) == "ok"
    assert run(sample) == "ok"
    assert titles(alerts) == ["sheetcrm: sending stopped", "sheetcrm: sending resumed"]
    assert "since 2026-11-23 10:00 KST" in alerts.requests[1].json()["message"]


def test_a_failed_run_is_alerted_once_and_the_next_run_that_finishes_ends_it(
        sample: Path, alerts: WebhookServer) -> None:
    add_alerts(sample, url_of(alerts))
    sheet = sample / "sample_sheets/customers.csv"
    sheet.rename(sheet.with_suffix(".away"))
    for _ in range(3):
        with pytest.raises(BackendError):
            run(sample)
    assert titles(alerts) == ["sheetcrm: a run failed"]
    assert "customers.csv" in alerts.requests[0].json()["message"]

    sheet.with_suffix(".away").rename(sheet)
    assert run(sample) == "ok"
    assert run(sample) == "ok"
    assert titles(alerts) == ["sheetcrm: a run failed", "sheetcrm: runs work again"]


def test_a_channel_down_is_alerted_once_by_name_and_again_when_it_works(
        sample: Path, alerts: WebhookServer) -> None:
    add_alerts(sample, url_of(alerts))
    with WebhookServer() as hook:
        use_webhook(sample, hook.url)
        down = hook.add_fault(Fault(Reply(503), times=None))
        assert [run(sample) for _ in range(3)] == ["channel_down"] * 3
        assert titles(alerts) == ["sheetcrm: channel email is down"]
        assert "503" in alerts.requests[0].json()["message"]

        hook.faults.remove(down)
        assert run(sample) == "ok"
        # The waiting sends went out (by webhook, keyed by row: no address needed).
        assert len(hook.requests_where("POST", 200)) == len(DAY0_SENDS_NO_ADDRESS)
    assert titles(alerts) == ["sheetcrm: channel email is down",
                              "sheetcrm: channel email works again"]


def test_an_alert_that_cannot_be_delivered_never_fails_the_run_and_is_tried_again(
        sample: Path, alerts: WebhookServer, caplog: pytest.LogCaptureFixture) -> None:
    add_alerts(sample, unreachable_url(), url_of(alerts))
    alerts.add_fault(Fault(Reply(500)))  # the receiver fails the first alert only
    set_send_limit(sample, 1)
    with caplog.at_level(logging.INFO, logger="sheetcrm.alerts"):
        assert run(sample) == "sending_stopped"  # the run's own status, not a failure
    assert len(alerts.requests) == 1 and titles(alerts) == []
    failures = [r.getMessage() for r in caplog.records
                if r.name == "sheetcrm.alerts" and r.levelno == logging.WARNING]
    assert len(failures) == 2
    assert any("alerts.urls[0]" in f for f in failures)
    assert any("alerts.urls[1]" in f for f in failures)

    assert run(sample) == "sending_stopped"  # the next run tries again: now it is taken
    assert run(sample) == "sending_stopped"  # ... and only once
    assert titles(alerts) == ["sheetcrm: sending stopped"]
    log = caplog.text + "".join(json.dumps(r.__dict__.get("fields", {})) for r in caplog.records)
    for secret in SECRETS:
        assert secret not in log


def test_the_alerts_memory_lives_in_the_ledger_and_holds_no_url(
        sample: Path, alerts: WebhookServer) -> None:
    add_alerts(sample, unreachable_url(), url_of(alerts))
    set_send_limit(sample, 1)
    run(sample)
    with sqlite3.connect(sample / STATE) as db:
        kept = dict(db.execute("SELECT name, value FROM meta WHERE name LIKE 'incident:%'"))
    assert list(kept) == ["incident:sending"]
    stored = json.loads(kept["incident:sending"])
    assert len(stored["told"]) == 1 and "alerts.urls[0]" in stored["error"]
    for secret in (*SECRETS, "127.0.0.1:"):
        assert secret not in kept["incident:sending"]


def test_unmatched_events_are_alerted_once_per_source_and_when_none_wait(
        sample: Path, alerts: WebhookServer) -> None:
    add_alerts(sample, url_of(alerts))
    config = load_config(sample / "config.toml", os.environ)
    waiting = {"pay": "2 event(s) wait: their keys are on no row (append = true adds one)"}
    for _ in range(3):
        report = alert_unmatched(config, NOW, waiting)
    assert report is not None and report.failed == []
    assert titles(alerts) == ["sheetcrm: events from [events.pay] match no row"]
    assert "2 event(s) wait" in alerts.requests[0].json()["message"]

    alert_unmatched(config, NOW, {**waiting, "form": "1 event(s) wait: no row"})
    alert_unmatched(config, NOW, {"form": "1 event(s) wait: no row"})
    alert_unmatched(config, NOW, {})
    alert_unmatched(config, NOW, {})
    assert titles(alerts) == ["sheetcrm: events from [events.pay] match no row",
                              "sheetcrm: events from [events.form] match no row",
                              "sheetcrm: events from [events.pay] are written again",
                              "sheetcrm: events from [events.form] are written again"]


def test_without_alerts_the_hooks_do_nothing(sample: Path) -> None:
    config = load_config(sample / "config.toml", os.environ)
    assert alert_unmatched(config, NOW, {"pay": "1 event(s) wait"}) is None
    assert not (sample / STATE).exists()


# -- the URLs are secrets -------------------------------------------------------------


def test_status_shows_an_undelivered_alert_masked(sample: Path, run_cli) -> None:
    with receiver() as alerts:
        add_alerts(sample, unreachable_url(), url_of(alerts))
        set_send_limit(sample, 1)
        run(sample)
    human = run_cli(sample, "--now", DAY0, "status")
    data = run_cli(sample, "--now", DAY0, "--json", "status")
    assert human.code == data.code == 0, human.err + data.err
    assert "sending: since 2026-11-23 10:00:00 KST, told to 1 URL(s)" in human.out
    assert "not delivered: alerts.urls[0]" in human.out
    [incident] = json.loads(data.out)["alerts"]
    assert incident["incident"] == "sending" and incident["told"] == 1
    assert incident["not_delivered"].startswith("alerts.urls[0]")
    for out in (human.out, human.err, data.out, data.err):
        for secret in SECRETS:
            assert secret not in out


def test_sync_says_on_stderr_which_alert_was_not_delivered_masked(sample: Path) -> None:
    with receiver() as alerts:
        add_alerts(sample, unreachable_url(), url_of(alerts))
        set_send_limit(sample, 1)
        result = cli(sample, "--now", DAY0, "sync", env={**os.environ, **ENV})
    assert result.returncode == 0, result.stderr  # the run's own outcome decides
    assert "blast-radius stop" in result.stdout
    assert "not delivered to alerts.urls[0]" in result.stderr
    assert titles(alerts) == ["sheetcrm: sending stopped"]
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_check_says_which_alert_url_apprise_cannot_use_without_showing_it(
        sample: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAD_ALERT_URL", f"nosuchservice://{TOKEN}@example.com/{PASSWORD}")
    with receiver() as alerts:
        add_alerts(sample, url_of(alerts), "${BAD_ALERT_URL}")
        result = run_cli(sample, "--now", DAY0, "check")
        as_json = run_cli(sample, "--now", DAY0, "--json", "check")
    assert result.code == as_json.code == 1
    findings = {f["where"]: f for f in json.loads(as_json.out)["findings"]}
    assert findings["alerts.urls[1]"]["level"] == "error"
    assert "nosuchservice://" in findings["alerts.urls[1]"]["message"]
    assert findings["alerts.urls[0]"]["level"] == "info"
    assert "alerts.urls[1]" in result.out
    for out in (result.out, result.err, as_json.out):
        for secret in SECRETS:
            assert secret not in out
    assert alerts.requests == []  # check sends nothing


@pytest.mark.parametrize(("urls", "value", "where"), [
    ('["${BAD_ALERT_URL}"]', f"hooks.example.com/{TOKEN}", "alerts.urls.0: not an apprise URL"),
    ('"${BAD_ALERT_URL}"', f"json://hooks.example.com/{TOKEN}", "alerts.urls: (hidden)"),
    ("[]", "", "alerts.urls: (hidden) is invalid: List should have at least 1 item"),
])
def test_a_bad_alerts_table_is_a_config_error_that_never_shows_a_url(
        sample: Path, run_cli, monkeypatch: pytest.MonkeyPatch, urls: str, value: str,
        where: str) -> None:
    monkeypatch.setenv("BAD_ALERT_URL", value)
    config = sample / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"\n[alerts]\nurls = {urls}\n",
                      encoding="utf-8")
    for args in (("sync",), ("check",), ("status",)):
        result = run_cli(sample, "--now", DAY0, *args)
        assert result.code == 2
        assert where in result.err
        assert TOKEN not in result.err + result.out


def test_a_url_written_where_the_alerts_table_goes_is_refused_without_showing_it(
        sample: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK", f"https://hooks.slack.com/services/{TOKEN}")
    config = sample / "config.toml"
    config.write_text('alerts = "${SLACK_WEBHOOK}"\n' + config.read_text(encoding="utf-8"),
                      encoding="utf-8")
    result = run_cli(sample, "check")
    assert result.code == 2 and "alerts: " in result.err and "[alerts] table" in result.err
    assert TOKEN not in result.err + result.out


def test_the_pieces_of_an_alert_url_are_masked_wherever_they_appear(sample: Path) -> None:
    url = f"tgram://123456789:{TOKEN}/55501"
    add_alerts(sample, "${TELEGRAM}", f"json://ops:{PASSWORD}@hooks.example.com/services/x")
    config = load_config(sample / "config.toml", {**ENV, "TELEGRAM": url})
    redact = Redactor.for_config(config, {**ENV, "TELEGRAM": url})
    said = redact(f"bot {TOKEN} refused; login with {PASSWORD} at hooks.example.com/services")
    assert TOKEN not in said and PASSWORD not in said
    assert "hooks.example.com/services" in said  # words and host names stay readable
    assert redact(url) == "***"


def test_every_alerts_key_is_in_the_config_reference() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for key in AlertSettings.model_fields:
        assert f"`[alerts] {key}`" in readme
