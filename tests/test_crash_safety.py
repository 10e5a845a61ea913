"""kill -9 a real `sheetcrm sync` at every crash point, re-run, and count what arrived.

Invariant: a step reaches a customer at most once, whatever the crash point. The
webhook receiver is a real HTTP server on loopback that records every request; a
message interrupted between its claim in the ledger and the channel's answer is
reported as uncertain and never re-sent. On the outbox (where a second delivery
overwrites the same file) an interrupted send is simply completed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.sample import DAY0, DAY0_SENDS, DAY0_SENDS_NO_ADDRESS, use_smtp, use_webhook
from tests.support.servers import Reply, WebhookServer
from tests.support.smtp import SmtpServer

EXPECTED = len(DAY0_SENDS)  # by email
BY_WEBHOOK = len(DAY0_SENDS_NO_ADDRESS)  # keyed by the row: no address needed


def start_sync(folder: Path, kill_at: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SHEETCRM_KILL_AT"}
    if kill_at:
        env["SHEETCRM_KILL_AT"] = kill_at
    return subprocess.Popen(
        [sys.executable, "-m", "sheetcrm.cli", "--now", DAY0, "--json", "sync"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )


def run_sync(folder: Path, kill_at: str | None = None) -> tuple[int, str, str]:
    proc = start_sync(folder, kill_at)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def received_ids(server: WebhookServer) -> Counter[str]:
    return Counter(r.headers["webhook-id"] for r in server.requests)


@pytest.mark.parametrize("kill_at, lost", [
    ("after-read", 0),
    ("after-enroll", 0),
    ("after-claim:1", 1),    # claimed, never left: uncertain, never sent
    ("after-claim:9", 1),
    ("after-send:1", 0),     # left, not yet marked: uncertain, not sent again
    ("after-send:14", 0),
    ("before-write", 0),
    ("after-write", 0),
])
def test_kill_9_never_duplicates_a_webhook(sample: Path, kill_at: str, lost: int) -> None:
    with WebhookServer() as server:
        use_webhook(sample, server.url)
        code, _, err = run_sync(sample, kill_at)
        assert code == -signal.SIGKILL, err

        code, out, err = run_sync(sample)
        assert code == 0, err
        recovered = json.loads(out)["recovered"]
        assert len(recovered) == (1 if kill_at.startswith(("after-claim", "after-send")) else 0)

        code, out, err = run_sync(sample)  # a third run finds nothing left to do
        assert code == 0, err
        assert json.loads(out)["sends"] == []

        counts = received_ids(server)
        assert max(counts.values()) == 1, counts.most_common(3)
        assert len(counts) == BY_WEBHOOK - lost


def test_kill_9_while_the_request_is_in_flight(sample: Path) -> None:
    # The receiver holds the 5th request; the process is killed while it waits.
    with WebhookServer([200, 200, 200, 200, Reply(200, delay=30)]) as server:
        use_webhook(sample, server.url)
        proc = start_sync(sample)
        deadline = time.monotonic() + 60
        while len(server.requests) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(server.requests) == 5
        proc.kill()
        proc.communicate(timeout=30)

        code, out, err = run_sync(sample)
        assert code == 0, err
        assert len(json.loads(out)["recovered"]) == 1

    counts = received_ids(server)
    assert max(counts.values()) == 1
    assert len(counts) == BY_WEBHOOK  # the held request did arrive, once


def test_kill_9_on_the_outbox_completes_without_a_second_file(sample: Path) -> None:
    code, _, err = run_sync(sample, "after-claim:3")
    assert code == -signal.SIGKILL, err
    assert len(list((sample / "outbox").glob("*.eml"))) == 2

    code, out, err = run_sync(sample)
    assert code == 0, err
    data = json.loads(out)
    assert data["summary"]["sent"] == EXPECTED - 2  # the interrupted one is sent now
    assert len(list((sample / "outbox").glob("*.eml"))) == EXPECTED


def test_kill_9_after_an_email_left_keeps_its_message_id_for_bounces_and_replies(
        sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(users={"op": "right"}) as smtp:
        use_smtp(sample, smtp.port)
        monkeypatch.setenv("SMTP_PASSWORD", "right")
        code, _, err = run_sync(sample, "after-send:2")
        assert code == -signal.SIGKILL, err
        code, out, err = run_sync(sample)
        assert code == 0, err
        assert len(json.loads(out)["recovered"]) == 1
        with sqlite3.connect(sample / ".sheetcrm/state.db") as db:
            stored = dict(db.execute("SELECT status, message_id FROM sends "
                                     "WHERE status = 'uncertain'").fetchall())
        received = [str(m.message["Message-ID"]) for m in smtp.messages]
        assert len(received) == EXPECTED == len(set(received))  # none twice
        assert stored["uncertain"] == received[1]  # the second mail, cut off before marked
