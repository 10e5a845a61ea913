"""Alerts from ``sheetcrm run``: once per incident across ticks and a restart, once when
it ends, a rejected config change among them; an alert service that cannot be reached
never stops the daemon, and its URL shows nowhere.

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``; the alert receivers in ``tests.support.alerts``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
from tests.support.daemon import cli, get_health, save
from tests.support.sample import DAY0

SECRETS = (TOKEN, PASSWORD)


def environment() -> dict[str, str]:
    return {**os.environ, **ENV, "COLUMNS": "200"}


def test_a_blast_stop_is_alerted_once_across_ticks_and_a_restart_then_once_when_it_ends(
        sample: Path, start) -> None:
    with receiver() as alerts:
        add_alerts(sample, url_of(alerts))
        set_send_limit(sample, 1)
        first = start("--every-seconds", "0.3", env=environment())
        first.wait_runs(3, status="sending_stopped")
        assert titles(alerts) == ["sheetcrm: sending stopped"]
        assert first.terminate()[0] == 0

        again = start("--every-seconds", "0.3", env=environment())
        again.wait_runs(3, status="sending_stopped")
        assert titles(alerts) == ["sheetcrm: sending stopped"]  # remembered over the restart

        set_send_limit(sample, 500)
        again.wait_runs(2)
        assert titles(alerts) == ["sheetcrm: sending stopped", "sheetcrm: sending resumed"]
        assert [e["incident"] for e in again.events("alert_sent")] == ["sending"]
        assert again.terminate()[0] == 0


def test_a_rejected_config_change_is_alerted_once_and_its_end_even_after_a_restart(
        sample: Path, start) -> None:
    with receiver() as alerts:
        add_alerts(sample, url_of(alerts))
        config = sample / "config.toml"
        good = config.read_text(encoding="utf-8")
        d = start("--every-seconds", "0.2", env=environment())
        d.wait_runs(1)
        assert titles(alerts) == []

        save(config, good.replace('timezone = "Asia/Seoul"', 'timezone = "Mars/Olympus"'))
        d.wait_for("the alert", lambda: titles(alerts))
        save(config, good.replace('timezone = "Asia/Seoul"', 'timezone = "Venus/Maxwell"'))
        d.wait_for("the second rejection", lambda: len(d.events("config_rejected")) == 2)
        d.ticks_after(2)
        assert titles(alerts) == ["sheetcrm: config change rejected"]  # one incident
        message = alerts.requests[0].json()["message"]
        assert "timezone" in message and "Mars/Olympus" in message
        assert d.terminate()[0] == 0

        save(config, good)  # fixed while the daemon was stopped: its start ends the incident
        restarted = start("--every-seconds", "0.2", env=environment())
        restarted.wait_runs(1)
        restarted.wait_for("the end", lambda: len(titles(alerts)) == 2)
        restarted.ticks_after(2)
        assert titles(alerts) == ["sheetcrm: config change rejected",
                                  "sheetcrm: config accepted"]
        assert restarted.terminate()[0] == 0


def test_an_alert_service_out_of_reach_never_stops_the_daemon_and_its_url_shows_nowhere(
        sample: Path, start) -> None:
    with receiver() as alerts:
        add_alerts(sample, unreachable_url(), url_of(alerts))
        set_send_limit(sample, 1)
        d = start("--every-seconds", "0.3", "--health-port", "0", env=environment())
        d.wait_runs(3, status="sending_stopped")
        assert titles(alerts) == ["sheetcrm: sending stopped"]
        tried = d.events("alert_not_delivered")
        assert len(tried) >= 3  # tried again at every tick
        assert all(e["error"].startswith("alerts.urls[0]") for e in tried)
        assert d.runs("failed") == []
        _, health = get_health(d.events("start")[0]["health_port"])
        status = cli(sample, "--now", DAY0, "status", env=environment())
        as_json = cli(sample, "--now", DAY0, "--json", "status", env=environment())
        assert d.terminate()[0] == 0

    assert "not delivered: alerts.urls[0]" in status.stdout
    assert json.loads(as_json.stdout)["alerts"][0]["not_delivered"].startswith("alerts.urls[0]")
    shown = {"the log": d.log_path.read_text(encoding="utf-8"),
             "/health": json.dumps(health), "status": status.stdout + status.stderr,
             "status --json": as_json.stdout + as_json.stderr,
             "daemon.json": (sample / ".sheetcrm/daemon.json").read_text(encoding="utf-8")}
    for where, text in shown.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {where}"
