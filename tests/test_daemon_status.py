"""`sheetcrm status` (and /health) on a daemon: its runs, sends and row errors, a run
stalled by the blast-radius guard (why, and since when), and a run killed mid-way.

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.app.schedule import human_duration
from sheetcrm.fsutil import RunLock
from tests.support.daemon import LOCK, STATE, cli, get_health, save
from tests.support.sample import DAY0, tree_digest, use_webhook
from tests.support.servers import WebhookServer


def test_status_shows_the_daemon_runs_sends_and_row_errors(sample: Path, start) -> None:
    empty = cli(sample, "status")
    assert empty.returncode == 0, empty.stderr
    assert "never started" in empty.stdout and "no runs yet" in empty.stdout
    assert not (sample / ".sheetcrm").exists()  # read-only: not even the folder

    # The first send is refused for good (400); the receiver then answers 503 even
    # after retries: it is down as a whole, so the run stops using it, no other
    # customer is failed, the daemon backs off and /health says so.
    with WebhookServer([400, 503]) as server:
        use_webhook(sample, server.url)
        d = start("--every", "1h", "--health-port", "0")
        d.wait_runs(1, status="channel_down")
        port = d.events("start")[0]["health_port"]
        with pytest.raises(urllib.error.HTTPError) as unhealthy:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        assert unhealthy.value.code == 503 and json.load(unhealthy.value)["healthy"] is False
        assert len(server.requests) == 2

        data = json.loads(cli(sample, "--json", "status").stdout)
        assert data["daemon"]["state"] == "running" and data["daemon"]["pid"] == d.pid
        assert data["schedule"] == "every 1h"
        assert data["next_run_at"] is not None
        assert data["sends"]["counts"]["failed"] == 1 and data["sends"]["counts"]["retry"] == 1
        assert {s["status"] for s in data["sends"]["items"]} == {"failed", "retry"}
        run = data["last_runs"][0]
        assert run["status"] == "channel_down" and run["summary"]["failed"] == 1
        assert list(run["summary"]["channels_down"]) == ["email"]
        assert data["row_errors"]["count"] == len(data["row_errors"]["items"]) > 0
        assert any("2026-02-30" in e["message"] for e in data["row_errors"]["items"])

        human = cli(sample, "status")
        assert human.returncode == 0
        for text in (f"running, pid {d.pid}", "every 1h", "1 failed", "1 retry", "2026-02-30"):
            assert text in human.stdout, human.stdout
        assert d.terminate()[0] == 0

    before = tree_digest(sample / ".sheetcrm")
    stopped = json.loads(cli(sample, "--json", "status").stdout)
    assert stopped["daemon"]["state"] == "stopped"
    assert tree_digest(sample / ".sheetcrm") == before


# -- stalled sending -------------------------------------------------------------------


def set_send_limit(folder: Path, limit: int) -> None:
    """Change ``max_sends_per_run`` as an editor saves a file (atomically)."""
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    save(config, re.sub(r"(?m)^max_sends_per_run\s*=\s*\d+", f"max_sends_per_run = {limit}",
                        text))


def test_a_blast_stopped_run_is_not_ok_and_health_and_status_say_why_since_when(
        sample: Path, start) -> None:
    set_send_limit(sample, 1)  # 21 sends fall due on day 0: the guard holds them all
    heartbeat = sample / ".sheetcrm/heartbeat"
    d = start("--every-seconds", "0.3", "--health-port", "0", "--heartbeat", str(heartbeat))
    d.wait_runs(2, status="sending_stopped")
    stopped = d.runs("sending_stopped")
    since = datetime.fromisoformat(stopped[0]["now"]).replace(microsecond=0)
    assert stopped[0]["sent"] == 0 and stopped[0]["level"] == "error"
    assert "blast-radius stop" in stopped[0]["reason"]
    assert {datetime.fromisoformat(r["stalled_since"]) for r in stopped} == {since}
    assert not heartbeat.exists()  # not a good run

    port = d.events("start")[0]["health_port"]
    code, body = get_health(port)
    assert code == 503 and body["healthy"] is False
    stall = body["stalled"]
    assert stall["status"] == "sending_stopped" and "blast-radius stop" in stall["reason"]
    assert datetime.fromisoformat(stall["since"]) == since
    assert stall["runs"] >= 2 and stall["for_seconds"] >= 0 and stall["for"]

    later = "2026-11-23T10:30"
    report = json.loads(cli(sample, "--now", later, "--json", "status").stdout)
    assert report["stalled"]["status"] == "sending_stopped"
    assert "blast-radius stop" in report["stalled"]["reason"]
    assert datetime.fromisoformat(report["stalled"]["since"]) == since
    lasted = datetime.fromisoformat(later).replace(tzinfo=ZoneInfo("Asia/Seoul")) - since
    assert report["stalled"]["for_seconds"] == lasted.total_seconds()
    human = cli(sample, "--now", later, "status", env={**os.environ, "COLUMNS": "200"}).stdout
    assert f"stalled since {since:%Y-%m-%d %H:%M:%S} KST (for {human_duration(lasted)}" in human
    assert "blast-radius stop" in human

    # The operator lifts the limit: the next run sends, and all is well again.
    set_send_limit(sample, 1000)
    d.wait_runs(1)
    assert d.runs()[0]["sent"] > 0
    d.wait_for("the heartbeat", heartbeat.exists)
    code, body = get_health(port)
    assert code == 200 and body["healthy"] is True and body["stalled"] is None
    report = json.loads(cli(sample, "--now", later, "--json", "status").stdout)
    assert report["stalled"] is None
    assert d.terminate()[0] == 0


# -- interrupted runs ------------------------------------------------------------------


def test_a_run_killed_mid_way_shows_as_interrupted_then_is_recorded_so(sample: Path,
                                                                       start) -> None:
    killed = start("--every", "1h", env={**os.environ, "SHEETCRM_KILL_AT": "after-claim"})
    assert killed.proc.wait(30) == -signal.SIGKILL
    before = tree_digest(sample / ".sheetcrm")

    report = json.loads(cli(sample, "--now", DAY0, "--json", "status").stdout)
    assert report["last_runs"][0]["status"] == "interrupted"
    human = cli(sample, "--now", DAY0, "status", env={**os.environ, "COLUMNS": "200"})
    assert "interrupted" in human.stdout and "running" not in human.stdout.split("last runs")[1]
    assert tree_digest(sample / ".sheetcrm") == before  # status wrote nothing
    with RunLock(sample / LOCK):  # a run in progress holds the lock: it is running
        report = json.loads(cli(sample, "--now", DAY0, "--json", "status").stdout)
        assert report["last_runs"][0]["status"] == "running"

    again = start("--every", "1h", now="2026-11-23T10:01")
    again.wait_runs(1)
    assert again.terminate()[0] == 0
    conn = sqlite3.connect(f"{(sample / STATE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        statuses = [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
    finally:
        conn.close()
    assert statuses == ["interrupted", "ok"]
