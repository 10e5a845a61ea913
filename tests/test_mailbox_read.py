"""The mailbox, read from a real IMAP server on loopback: delivery reports from Postfix,
Exim, Exchange and Gmail become bounces for the right rows (permanent failures only),
a customer's reply becomes a reply, auto-replies and the operator's own mail change
nothing, and reading again adds nothing."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sheetcrm.app.mailbox import MailboxReport, hear_mailbox
from sheetcrm.config import MailboxSettings
from sheetcrm.errors import ConfigError
from sheetcrm.ledger import Ledger
from sheetcrm.mailbox import MailboxError, probe, read_new_mail
from sheetcrm.model import EventKind
from tests.support.imap import (
    PASSWORD,
    USER,
    ImapServer,
    add_mailbox,
    free_port,
    header,
    mailbox_section,
    sample,
    sent,
)
from tests.support.journeys import World
from tests.support.servers import DripServer, make_tls_contexts


def customers_sent_to(tmp_path: Path, keys: list[str]) -> tuple[World, dict[str, bytes]]:
    """A world whose customers each got the payment flow's first mail (day 0)."""
    world = World.create(tmp_path, {})
    world.customers = {key: {"applied": world.date(-3)} for key in keys}
    world.write_sheet()
    world.sync(0)
    return world, sent(world)


def about(name: str, to: str, raw: bytes, at: datetime) -> tuple[bytes, datetime, tuple[str, ...]]:
    """The mail ``name`` about the message ``raw`` sent to ``to``, arriving at ``at``."""
    mail = sample(name, at=at, recipient=to, message_id=header(raw, "Message-ID"), original=raw)
    return mail, at, ()


def heard(world: World) -> dict[str, list[tuple[EventKind, str, str]]]:
    """Row key -> (kind, send, status) of every event the mailbox brought."""
    ledger = Ledger.open(world.folder / "state.db")
    try:
        state = ledger.load_state()
    finally:
        ledger.close()
    return {key: [(e.kind, e.idem_key or "", str(e.data.get("status", ""))) for e in events
                  if e.source == "mailbox"]
            for key, events in state.events_by_key.items()}


def hear(world: World, at: datetime, **connect: object) -> MailboxReport | None:
    ledger = Ledger.open(world.folder / "state.db")
    try:
        return hear_mailbox(world.config, ledger, at, **connect)
    finally:
        ledger.close()


def test_permanent_bounces_from_four_mail_systems_become_bounces_of_the_right_rows(
        tmp_path: Path, imap: ImapServer) -> None:
    keys = ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "f@x.com"]
    world, out = customers_sent_to(tmp_path, keys)
    folder = imap.new_folder()
    add_mailbox(world, mailbox_section(imap.port, folder))
    day1 = world.day(1, 9)
    foreign = (b"From: Shop <shop@example.com>\nTo: friend@example.org\nSubject: lunch\n"
               b"Message-ID: <CAJ5mZp0operator0own@mail.gmail.com>\n\nsee you\n")
    imap.append(folder, [
        about("postfix_bounce", "a@x.com", out["a@x.com"], day1),
        about("exim_bounce", "b@x.com", out["b@x.com"], day1),
        about("exchange_ndr", "c@x.com", out["c@x.com"], day1),
        about("gmail_bounce", "d@x.com", out["d@x.com"], day1),
        # Temporary: a delay warning, the failure after days of retrying (4.4.1), Gmail's delay.
        about("postfix_delayed", "e@x.com", out["e@x.com"], day1),
        about("postfix_expired", "e@x.com", out["e@x.com"], day1),
        about("gmail_delay", "e@x.com", out["e@x.com"], day1),
        # A plain-text bounce (no RFC 3464 report), and a report about the operator's own mail.
        about("qmail_bounce", "f@x.com", out["f@x.com"], day1),
        about("postfix_bounce", "friend@example.org", foreign, day1),
    ])
    before = imap.snapshot(folder)

    report = hear(world, world.day(2))

    assert report is not None and report.summary() == {
        "read": True, "mails": 9, "bounces": 4, "replies": 0, "more_waiting": False}
    sends = {key: header(out[key], "X-Sheetcrm-Key") for key in keys}
    assert heard(world) == {
        "a@x.com": [(EventKind.BOUNCE, sends["a@x.com"], "5.1.1")],
        "b@x.com": [(EventKind.BOUNCE, sends["b@x.com"], "5.0.0")],
        "c@x.com": [(EventKind.BOUNCE, sends["c@x.com"], "5.1.10")],
        "d@x.com": [(EventKind.BOUNCE, sends["d@x.com"], "5.1.1")],
    }
    assert imap.snapshot(folder) == before  # nothing flagged, moved or deleted


def test_a_reply_is_heard_and_auto_replies_and_the_operators_own_mail_change_nothing(
        tmp_path: Path, imap: ImapServer) -> None:
    world, out = customers_sent_to(tmp_path, ["a@x.com", "b@x.com"])
    folder = imap.new_folder()
    add_mailbox(world, mailbox_section(imap.port, folder))
    day1 = world.day(1, 9)
    reply, _, _ = about("reply", "a@x.com", out["a@x.com"], day1)
    unrelated = sample("unrelated", at=day1)
    imap.append(folder, [
        (reply, day1, ()),
        *[(mail, at, ("\\Seen",)) for mail, at, _ in (
            about(name, "b@x.com", out["b@x.com"], day1)
            for name in ("autoreply_outlook_ko", "autoreply_subject_ko", "vacation_gmail",
                         "autoreply_header_en"))],
        (unrelated, day1, ("\\Flagged",)),
        (sample("unrelated", at=day1), day1, ()),
    ])
    before = imap.snapshot(folder)

    report = hear(world, world.day(2))

    assert report is not None and (report.read, report.bounces, report.replies) == (7, 0, 1)
    assert heard(world) == {"a@x.com": [(EventKind.REPLY, header(out["a@x.com"],
                                                                  "X-Sheetcrm-Key"), "")]}
    ledger = Ledger.open(world.folder / "state.db")
    (event,) = ledger.load_state().events_for("a@x.com")
    ledger.close()
    assert event.event_id == header(reply, "Message-ID")  # the reply's own Message-ID
    assert event.at == day1  # when it was written, not when it was read
    after = imap.snapshot(folder)
    assert after == before
    assert [h.flags for h in after] == [frozenset(), *[frozenset({"\\Seen"})] * 4,
                                        frozenset({"\\Flagged"}), frozenset()]


def test_reading_the_mailbox_again_adds_nothing_even_without_the_cursor(
        tmp_path: Path, imap: ImapServer) -> None:
    world, out = customers_sent_to(tmp_path, ["a@x.com", "b@x.com"])
    folder = imap.new_folder()
    add_mailbox(world, mailbox_section(imap.port, folder))
    day1 = world.day(1, 9)
    imap.append(folder, [about("reply", "a@x.com", out["a@x.com"], day1),
                         about("gmail_bounce", "b@x.com", out["b@x.com"], day1)])
    first = hear(world, world.day(2))
    assert first is not None and (first.read, first.bounces, first.replies) == (2, 1, 1)
    events = heard(world)

    again = hear(world, world.day(2, 11))
    assert again is not None and again.read == 0  # the cursor: only new mail is read
    with sqlite3.connect(world.folder / "state.db") as db:  # the cursor lost
        db.execute("DELETE FROM meta WHERE name = 'mailbox_cursor'")
    afresh = hear(world, world.day(2, 12))
    assert afresh is not None and (afresh.read, afresh.bounces, afresh.replies) == (2, 0, 0)
    assert heard(world) == events

    imap.append(folder, [about("reply", "a@x.com", out["a@x.com"], world.day(3))])
    later = hear(world, world.day(3, 11))
    assert later is not None and (later.read, later.replies) == (1, 1)
    assert [kind for kind, _, _ in heard(world)["a@x.com"]] == [EventKind.REPLY] * 2


def test_a_long_backlog_is_read_in_batches_and_none_of_it_is_skipped(
        tmp_path: Path, imap: ImapServer) -> None:
    world, out = customers_sent_to(tmp_path, ["a@x.com", "b@x.com", "c@x.com"])
    folder = imap.new_folder()
    add_mailbox(world, mailbox_section(imap.port, folder))
    imap.append(folder, [about("reply", key, out[key], world.day(1, 9))
                         for key in ("a@x.com", "b@x.com", "c@x.com")])
    reads = [hear(world, world.day(2, hour), batch=2) for hour in (10, 11, 12)]
    assert [(r.read, r.replies, r.more) for r in reads if r is not None] == [
        (2, 2, True), (1, 1, False), (0, 0, False)]
    assert sorted(heard(world)) == ["a@x.com", "b@x.com", "c@x.com"]


def test_a_mailbox_that_drips_its_greeting_is_given_up_within_the_timeout() -> None:
    settings = MailboxSettings(host="127.0.0.1", port=1, security="none", username=USER,
                               password=PASSWORD, timeout=1)
    with DripServer(b"* OK " + b"x" * 200 + b"\r\n", interval=0.2) as drip:
        settings = settings.model_copy(update={"port": drip.port})
        started = time.monotonic()
        with pytest.raises(MailboxError, match="no answer within 1 s") as caught:
            read_new_mail(settings, None, datetime.now().date())
        assert time.monotonic() - started < 4
    assert PASSWORD not in str(caught.value)


def test_check_connect_logs_in_and_reads_nothing_and_a_wrong_password_is_an_error(
        tmp_path: Path, imap: ImapServer, run_cli) -> None:
    world, out = customers_sent_to(tmp_path, ["a@x.com"])
    folder = imap.new_folder()
    imap.append(folder, [about("reply", "a@x.com", out["a@x.com"], world.day(1)),
                         (sample("unrelated", at=world.day(1)), world.day(1), ())])
    before = imap.snapshot(folder)
    config = world.folder / "config.toml"
    text = config.read_text(encoding="utf-8")

    config.write_text(text + mailbox_section(imap.port, folder), encoding="utf-8")
    result = run_cli(world.folder, "--json", "check", "--connect")
    found = [f for f in json.loads(result.out)["findings"]
             if f["where"] == "mailbox"]
    assert found == [{"level": "info", "where": "mailbox", "message":
                      f"mailbox 127.0.0.1:{imap.port} reachable (no encryption), login as "
                      f"'{USER}' accepted, folder '{folder}' holds 2 mail(s); nothing was read"}]
    assert imap.snapshot(folder) == before
    assert heard(world) == {}

    config.write_text(text + mailbox_section(imap.port, folder, password="not-it-at-all"),
                      encoding="utf-8")
    result = run_cli(world.folder, "--json", "check", "--connect")
    assert result.code == 1
    found = [f for f in json.loads(result.out)["findings"]
             if f["where"] == "mailbox"]
    assert found == [{"level": "error", "where": "mailbox", "message":
                      f"mailbox 127.0.0.1:{imap.port}: login as '{USER}' refused; check "
                      "username and password"}]
    assert "not-it-at-all" not in result.out + result.err


def test_starttls_checks_the_servers_certificate(tmp_path: Path) -> None:
    _, client = make_tls_contexts(tmp_path)
    with ImapServer(cert=tmp_path / "cert.pem", key=tmp_path / "key.pem") as server:
        settings = MailboxSettings(host="127.0.0.1", port=server.port, security="starttls",
                                   username=USER, password=PASSWORD, timeout=10)
        assert probe(settings, ssl_context=client).startswith(
            f"mailbox 127.0.0.1:{server.port} reachable (STARTTLS), login as '{USER}' accepted")
        with pytest.raises(MailboxError, match="TLS certificate not trusted"):
            probe(settings)  # the system's trust store does not know this certificate


def test_a_mailbox_password_is_never_sent_in_clear_beyond_this_machine(tmp_path: Path) -> None:
    world = World.create(tmp_path, {})
    add_mailbox(world, '\n[mailbox]\nhost = "imap.example.com"\nsecurity = "none"\n'
                f'username = "{USER}"\npassword = "{PASSWORD}"\n')
    with pytest.raises(ConfigError, match="unencrypted to imap.example.com") as caught:
        world.config  # noqa: B018
    assert PASSWORD not in str(caught.value)


def test_an_unreachable_mailbox_reads_as_an_error_not_an_exception(tmp_path: Path) -> None:
    world, _ = customers_sent_to(tmp_path, ["a@x.com"])
    add_mailbox(world, mailbox_section(free_port(), "INBOX"))
    report = hear(world, world.day(1) + timedelta(hours=1))
    assert report is not None and report.summary()["read"] is False
    assert "connection failed" in report.summary()["error"]
