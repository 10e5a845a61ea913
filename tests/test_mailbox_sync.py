"""Through a real ``sync``: the mailbox is read first, so a customer whose address bounced
for good is sent nothing more and the row says why, a reply ends a flow whose goal
asks for one in the same run, and a mailbox that cannot be reached never fails a run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sheetcrm.core.projection import written_by_sheetcrm
from sheetcrm.ledger import Ledger
from sheetcrm.model import Record
from tests.support.imap import (
    ImapServer,
    add_mailbox,
    free_port,
    header,
    mailbox_section,
    sample,
    sent,
)
from tests.support.journeys import World

BOUNCED = "the address bounced for good: nothing more is sent to it"


def shop(tmp_path: Path, keys: list[str]) -> World:
    """Customers waiting to pay; a reply counts as the payment flow's goal; an error column."""
    world = World.create(tmp_path, {})
    config = world.folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace('goal = "paid"', 'goal = "paid or replied()"', 1)
    text = text.replace('last_sent = "최근 발송"', 'last_sent = "최근 발송"\nerror = "오류"', 1)
    config.write_text(text, encoding="utf-8")
    world.customers = {key: {"applied": world.date(-3)} for key in keys}
    world.write_sheet()
    return world


def test_a_bounced_customer_gets_nothing_more_the_row_says_why_and_a_reply_ends_the_flow(
        tmp_path: Path, imap: ImapServer) -> None:
    world = shop(tmp_path, ["a@x.com", "b@x.com", "c@x.com"])
    folder = imap.new_folder()
    add_mailbox(world, mailbox_section(imap.port, folder))
    first = world.sync(0)
    assert first.summary()["mailbox"] == {"read": True, "mails": 0, "bounces": 0,
                                          "replies": 0, "opt_outs": 0,
                                          "more_waiting": False}
    out = sent(world)
    day1 = world.day(1, 9)
    imap.append(folder, [
        (sample("postfix_bounce", at=day1, recipient="a@x.com", original=out["a@x.com"],
                message_id=header(out["a@x.com"], "Message-ID")), day1, ()),
        (sample("reply", at=day1, recipient="b@x.com", original=out["b@x.com"],
                message_id=header(out["b@x.com"], "Message-ID")), day1, ()),
        (sample("autoreply_outlook_ko", at=day1, recipient="c@x.com", original=out["c@x.com"],
                message_id=header(out["c@x.com"], "Message-ID")), day1, ()),
    ])

    second = world.sync(2)  # payment step 2 is due for all three

    assert second.summary()["mailbox"] == {"read": True, "mails": 3, "bounces": 1,
                                           "replies": 1, "opt_outs": 0,
                                           "more_waiting": False}
    assert [(h.send.key, h.reason, h.skip) for h in second.plan.held] == [
        ("a@x.com", BOUNCED, True)]
    assert [(m.key, m.flow, m.action) for m in second.plan.moves] == [
        ("b@x.com", "payment", "converted")]
    assert world.messages("a@x.com") == [("payment", 1, 0)]
    assert world.messages("b@x.com") == [("payment", 1, 0)]
    assert world.messages("c@x.com") == [("payment", 1, 0), ("payment", 2, 2)]  # auto-reply
    sheet = world.sheet()
    assert sheet["a@x.com"]["오류"] == (
        f"{world.date(1)} mail bounced (5.1.1): 550 5.1.1 <a@x.com>: Recipient address "
        "rejected: User unknown in virtual mailbox table")
    assert not sheet["b@x.com"]["오류"] and not sheet["c@x.com"]["오류"]

    third = world.sync(4)
    assert third.summary()["mailbox"]["mails"] == 0
    assert world.messages("a@x.com") == [("payment", 1, 0)]
    assert [(h.send.key, h.reason) for h in third.plan.held] == [("a@x.com", BOUNCED)]
    assert world.sheet()["a@x.com"]["오류"].startswith(f"{world.date(1)} mail bounced (5.1.1): ")


def test_an_unreachable_mailbox_is_logged_and_the_run_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, run_cli) -> None:
    world = shop(tmp_path, ["a@x.com"])
    port = free_port()  # nothing listens there
    add_mailbox(world, mailbox_section(port, "INBOX"))
    with caplog.at_level(logging.WARNING, logger="sheetcrm.mailbox"):
        result = world.sync(0)
    assert result.status == "ok"
    assert result.summary()["mailbox"] == {
        "read": False, "error": f"mailbox 127.0.0.1:{port}: connection failed "
                                "(ConnectionRefusedError: [Errno 111] Connection refused)"}
    assert world.messages("a@x.com") == [("payment", 1, 0)]
    assert [r.getMessage() for r in caplog.records] == [
        "mailbox not read, the run goes on without it: mailbox 127.0.0.1:"
        f"{port}: connection failed (ConnectionRefusedError: [Errno 111] Connection refused)"]

    world.customers["b@x.com"] = {"applied": world.date(-3)}
    world.write_sheet()
    cli = run_cli(world.folder, "--now", world.day(0, 11).isoformat(), "sync")
    assert cli.code == 0, cli.out + cli.err
    assert f"mailbox not read: mailbox 127.0.0.1:{port}: connection failed" in cli.out
    assert "1 sent" in cli.out


def test_the_error_column_with_a_bounce_note_is_recognised_as_sheetcrms(
        tmp_path: Path) -> None:
    config = World.create(tmp_path, {}).config
    note = "2026-03-03 메일 반송(5.1.10): 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient"
    row = Record(line=1, key="a@x.com", values={}, current={})
    broken = Record(line=2, key="b@x.com", values={}, current={}, errors=["no email"])
    assert written_by_sheetcrm("error", note, row, config)
    assert written_by_sheetcrm("error", f"no email; {note}", broken, config)
    assert not written_by_sheetcrm("error", "반송됨 - 주소 확인 필요", row, config)
    assert not written_by_sheetcrm("error", f"메모; {note}", row, config)


def test_a_reply_asking_to_stop_is_an_opt_out_honoured_in_the_same_run(
        tmp_path: Path, imap: ImapServer) -> None:
    # The sample's footer tells customers to reply "수신거부": that reply must count.
    world = World.create(tmp_path, {})
    config = world.folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'last_sent = "최근 발송"', 'last_sent = "최근 발송"\nopt_out = "수신 거부일"', 1),
        encoding="utf-8")
    world.customers = {key: {"applied": world.date(-3)} for key in ("a@x.com", "b@x.com")}
    world.write_sheet()
    folder = imap.new_folder()
    add_mailbox(world, mailbox_section(imap.port, folder))
    world.sync(0)
    out = sent(world)
    day1 = world.day(1, 9)
    imap.append(folder, [
        (sample(name, at=day1, recipient=key, original=out[key],
                message_id=header(out[key], "Message-ID")), day1, ())
        for name, key in (("reply", "a@x.com"), ("reply_stop", "b@x.com"))])

    second = world.sync(2)  # payment step 2, an ad, is due for both

    assert second.summary()["mailbox"] == {"read": True, "mails": 2, "bounces": 0,
                                           "replies": 2, "opt_outs": 1, "more_waiting": False}
    assert [(h.send.key, h.reason) for h in second.plan.held] == [
        ("b@x.com", "opted out: only transactional messages")]
    assert world.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 2)]
    assert world.messages("b@x.com") == [("payment", 1, 0)]
    sheet = world.sheet()
    assert sheet["b@x.com"]["수신 거부일"] == f"{world.date(1)} opted out"
    assert not sheet["a@x.com"].get("수신 거부일")


def test_a_stop_reply_to_a_message_the_ledger_has_forgotten_still_opts_out(
        tmp_path: Path, imap: ImapServer) -> None:
    # [ledger] keep forgets old sends, but the sample's footer asked for a "수신거부"
    # reply months ago: the reply names a Message-ID of ours nobody holds any more.
    world = World.create(tmp_path, {})
    config = world.folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'last_sent = "최근 발송"', 'last_sent = "최근 발송"\nopt_out = "수신 거부일"', 1)
        + '\n[ledger]\nkeep = "7d"\n', encoding="utf-8")
    world.customers = {key: {"applied": world.date(-3)} for key in ("a@x.com", "b@x.com")}
    world.write_sheet()
    folder = imap.new_folder()
    add_mailbox(world, mailbox_section(imap.port, folder))
    world.sync(0)
    first = sent(world)  # payment step 1 to each
    for day in (2, 4, 20):  # steps 2 and 3, then a run that forgets what is 7 days old
        world.sync(day)
    old = {key: header(first[key], "Message-ID") for key in first}
    ledger = Ledger.open_readonly(world.folder / "state.db")
    try:
        assert all(ledger.send_by_message_id(mid) is None for mid in old.values())
    finally:
        ledger.close()
    day21 = world.day(21, 9)
    imap.append(folder, [
        (sample("reply_stop", at=day21, recipient="b@x.com", original=first["b@x.com"],
                message_id=old["b@x.com"]), day21, ()),
        # the same words from a@x.com, about a message of another domain: not ours
        (sample("reply_stop", at=day21, recipient="a@x.com", original=first["a@x.com"],
                message_id="<0123456789abcdef0123456789abcdef@elsewhere.example>"),
         day21, ()),
    ])

    after = world.sync(21)

    assert after.summary()["mailbox"]["opt_outs"] == 1
    sheet = world.sheet()
    assert sheet["b@x.com"]["수신 거부일"] == f"{world.date(21)} opted out"
    assert not sheet["a@x.com"].get("수신 거부일")
