"""The send path: the ledger's journal between runs, messages built from what a channel
builds once, and an outbox file an earlier version named."""

from __future__ import annotations

import email
import email.policy
import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sheetcrm.channels import make_channel, parse_channel_settings
from sheetcrm.channels.base import Message
from sheetcrm.channels.email import EmailBuilder, EmailSettings, email_bytes
from sheetcrm.channels.outbox import OutboxChannel
from sheetcrm.ledger import Ledger
from sheetcrm.model import SendRecord, SendStatus

NOW = datetime(2026, 3, 3, tzinfo=UTC)


def journal_mode(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        db.close()


def claim(ledger: Ledger, n: int, *, durable: bool = True) -> str:
    rec = SendRecord(idem_key=f"k{n}", key=f"c{n}@x.com", flow="payment", entry=1, step=0,
                     channel="email", template="t", kind="transactional",
                     status=SendStatus.PENDING, created_at=NOW)
    assert ledger.claim_send(rec, run_id=1, durable=durable)
    return rec.idem_key


def test_a_run_leaves_the_ledger_in_rollback_mode_so_plan_creates_no_file(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    ledger = Ledger.open(path)
    assert journal_mode(path) == "wal"  # while the run writes
    key = claim(ledger, 1)
    ledger.finish_send(key, SendStatus.SENT, NOW, durable=False)
    ledger.close()
    assert journal_mode(path) == "delete"
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    readonly = Ledger.open_readonly(path)
    assert readonly.load_state().sent_keys == {"k1"}
    readonly.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_writer_closing_while_another_is_open_does_not_wait_and_the_last_one_switches(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    run, endpoint = Ledger.open(path), Ledger.open(path)
    claim(run, 1)
    started = time.monotonic()
    run.close()
    assert time.monotonic() - started < 5  # not the 30 s busy wait
    assert journal_mode(path) == "wal"  # the endpoint still has it open
    claim(endpoint, 2)
    endpoint.close()
    assert journal_mode(path) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_a_read_only_open_during_a_run_sees_its_commits_even_those_left_to_ride(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    ledger = Ledger.open(path)
    key = claim(ledger, 1, durable=False)
    ledger.finish_send(key, SendStatus.SENT, NOW, durable=False)
    readonly = Ledger.open_readonly(path)
    assert readonly.load_state().sent_keys == {"k1"}
    readonly.close()
    ledger.close()


def settings(**raw: object) -> EmailSettings:
    return EmailSettings.model_validate({"from": "마이클래스 <hello@example.com>",
                                         "reply_to": "help@example.com", **raw})


def message(n: int, **changes: object) -> Message:
    fields: dict = {
        "idempotency_key": f"sc-결제안내-e1-s1-{n}",
        "recipient": f"고객{n} <user{n}@example.com>",
        "subject": f"고객{n}님, 결제를 기다리고 있어요",
        "text": f"안녕하세요, 고객{n}님.",
        "meta": {"date": f"Mon, 02 Mar 2026 09:0{n}:00 +0900"},
    }
    fields.update(changes)
    return Message(**fields)


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_the_messages_of_one_builder_each_carry_their_own_headers() -> None:
    builder = EmailBuilder(settings())
    raws = [email_bytes(builder.build(message(n))) for n in range(3)]
    raws.append(email_bytes(builder.build(message(0))))  # the first again, unchanged
    assert raws[3] == raws[0]
    for n, raw in enumerate(raws[:3]):
        m = parsed(raw)
        assert m["To"].addresses[0].addr_spec == f"user{n}@example.com"
        assert m["Subject"] == f"고객{n}님, 결제를 기다리고 있어요"
        assert m["Date"] == f"Mon, 02 Mar 2026 09:0{n}:00 +0900"
        assert m["From"].addresses[0].display_name == "마이클래스"
        assert m["Reply-To"] == "help@example.com"
        assert m.get_content() == f"안녕하세요, 고객{n}님.\n"
    assert len({parsed(r)["Message-ID"] for r in raws[:3]}) == 3


def test_an_outbox_file_an_earlier_version_named_is_the_one_written_again(
        tmp_path: Path) -> None:
    channel = make_channel("email", parse_channel_settings(
        "email", {"from": "My Class <hello@example.com>"}), base_dir=tmp_path)
    assert isinstance(channel, OutboxChannel)
    key = "sc-결제안내-e1-s1-0a1b2c"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    earlier = tmp_path / "outbox" / f"sc---e1-s1-0a1b2c_{digest}.eml"  # Hangul dropped
    earlier.parent.mkdir()
    earlier.write_bytes(b"interrupted before an upgrade")
    delivery = channel.send(message(1, idempotency_key=key))
    assert Path(delivery.detail) == earlier
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [earlier.name]
    assert parsed(earlier.read_bytes())["X-Sheetcrm-Key"] == key


KILLED_RUN = """
import os, signal, sys
from datetime import UTC, datetime
from sheetcrm.ledger import Ledger
from sheetcrm.model import SendRecord, SendStatus
ledger = Ledger.open(__import__("pathlib").Path(sys.argv[1]))
rec = SendRecord(idem_key="k1", key="c1@x.com", flow="payment", entry=1, step=0,
                 channel="email", template="t", kind="transactional",
                 status=SendStatus.PENDING, created_at=datetime(2026, 3, 3, tzinfo=UTC))
ledger.claim_send(rec, run_id=1)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_after_a_run_was_killed_a_read_only_open_reads_its_log_and_changes_no_byte(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], timeout=60)
    assert killed.returncode == -signal.SIGKILL
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"state.db-wal", "state.db-shm"} <= set(files)  # the log of the killed run

    readonly = Ledger.open_readonly(path)
    assert readonly.pending_sends()[0].idem_key == "k1"
    readonly.close()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


KILLED_WITH_A_DEFERRED_RESULT = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from sheetcrm.ledger import Ledger
from sheetcrm.model import SendRecord, SendStatus
now = datetime(2026, 3, 3, tzinfo=UTC)
ledger = Ledger.open(Path(sys.argv[1]))
for key in ("k1", "k2"):
    rec = SendRecord(idem_key=key, key=f"{key}@x.com", flow="payment", entry=1, step=0,
                     channel="email", template="t", kind="transactional",
                     status=SendStatus.PENDING, created_at=now)
    ledger.claim_send(rec, run_id=1, durable=False)
    ledger.finish_send(key, SendStatus.SENT, now, durable=False, deferred=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_deferred_result_is_written_with_the_next_claim_and_a_kill_loses_only_the_last(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_WITH_A_DEFERRED_RESULT, str(path)],
                            timeout=60)
    assert killed.returncode == -signal.SIGKILL
    ledger = Ledger.open_readonly(path)
    sends = ledger.load_state().sends_by_key
    assert sends["k1@x.com"][0].status == SendStatus.SENT  # written with k2's claim
    assert sends["k2@x.com"][0].status == SendStatus.PENDING  # the next run rewrites it
    ledger.close()


def test_a_deferred_result_outlives_a_transaction_rolled_back_and_flush_writes_it(
        tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    key = claim(ledger, 1, durable=False)
    ledger.finish_send(key, SendStatus.SENT, NOW, durable=False, deferred=True)
    try:
        with ledger.transaction():
            raise RuntimeError("a write that failed")
    except RuntimeError:
        pass
    assert ledger.pending_sends()[0].idem_key == key
    ledger.flush()
    assert ledger.pending_sends() == []
    assert ledger.load_state().sends_by_key["c1@x.com"][0].status == SendStatus.SENT
    ledger.close()


def synchronous(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA synchronous").fetchone()[0])


def test_commits_without_an_fsync_leave_every_other_use_of_the_ledger_fully_synced(
        tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    claim(ledger, 1, durable=False)
    with ledger.transaction(durable=False) as db:
        assert synchronous(db) == 1  # NORMAL: the log is fsynced by a later commit
    with ledger.transaction() as db:
        assert synchronous(db) == 2  # FULL
    claim(ledger, 2, durable=False)
    assert synchronous(ledger._conn) == 2  # what every other query and write goes through
    ledger.close()
