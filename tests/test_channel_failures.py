"""A channel that fails as a whole fails no customer; a refused recipient fails one;
a send whose answer was lost is uncertain; a webhook's URL path is never shown.

Driven through the real CLI on the shipped sample, against a real SMTP server
(aiosmtpd) and a real HTTP receiver on loopback.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests.support.sample import CSV, DAY0, DAY0_SENDS, DAY0_SENDS_NO_ADDRESS, use_smtp
from tests.support.servers import Reply, WebhookServer
from tests.support.smtp import SmtpServer

DUE = len(DAY0_SENDS)  # 14 mails due on DAY0, one per customer (min_gap)


def use_webhook(folder: Path, url: str, extra: str = "") -> None:
    config = folder / "config.toml"
    text = re.sub(r'type = "outbox" .*\npath = "outbox"\nfrom = .*\nto = "email".*\n',
                  f'type = "webhook"\nurl = "{url}"\n{extra}',
                  config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def flows(folder: Path) -> str:
    return (folder / CSV).read_bytes().decode("utf-8-sig")


def replace_addresses(folder: Path, new: dict[str, str]) -> None:
    """Give customers other addresses (the sample's key column is the address)."""
    path = folder / CSV
    text = path.read_bytes().decode("utf-8-sig")
    for old, address in new.items():
        assert text.count(old) == 1
        text = text.replace(old, address)
    path.write_bytes(text.encode("utf-8-sig"))


def ledger_sends(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """{customer key: [(status, detail), ...]} from the ledger."""
    with sqlite3.connect(folder / ".sheetcrm/state.db") as db:
        rows = db.execute("SELECT key, status, detail FROM sends ORDER BY key, flow").fetchall()
    sends: dict[str, list[tuple[str, str]]] = {}
    for key, status, detail in rows:
        sends.setdefault(key, []).append((status, detail or ""))
    return sends


def test_a_refused_login_fails_no_customer_and_the_next_run_sends_once(
        sample: Path, run_cli, monkeypatch) -> None:
    with SmtpServer(users={"op": "right"}) as smtp:
        use_smtp(sample, smtp.port)
        monkeypatch.setenv("SMTP_PASSWORD", "wrong")
        result = run_cli(sample, "--now", DAY0, "--json", "sync")
        assert result.code == 4, result.err
        data = json.loads(result.out)
        assert list(data["summary"]["channels_down"]) == ["email"]
        assert "login as 'op' refused" in data["summary"]["channels_down"]["email"]
        assert data["summary"]["failed"] == 0 and data["summary"]["sent"] == 0
        # One attempt, then the channel is left alone for the rest of the run.
        assert data["summary"]["waiting_for_channel"] == DUE
        assert smtp.messages == []
        assert "실패" not in flows(sample)  # no flow was failed
        assert "wrong" not in result.out + result.err

        monkeypatch.setenv("SMTP_PASSWORD", "right")  # the operator fixes the secret
        result = run_cli(sample, "--now", "2026-11-23T10:10", "--json", "sync")
        assert result.code == 0, result.err
        assert json.loads(result.out)["summary"]["sent"] == DUE
        assert len(smtp.messages) == DUE
        assert len({m.message["Message-ID"] for m in smtp.messages}) == DUE

        result = run_cli(sample, "--now", "2026-11-23T10:20", "--json", "sync")
        assert json.loads(result.out)["summary"]["sent"] == 0
        assert len(smtp.messages) == DUE


def test_a_refused_recipient_fails_that_customer_only(sample: Path, run_cli,
                                                      monkeypatch) -> None:
    refused = "minjun.choi@example.com"
    with SmtpServer(users={"op": "right"},
                    refuse={refused: "550 5.1.1 No such user"}) as smtp:
        use_smtp(sample, smtp.port)
        monkeypatch.setenv("SMTP_PASSWORD", "right")
        result = run_cli(sample, "--now", DAY0, "--json", "sync")
    assert result.code == 1
    data = json.loads(result.out)
    assert data["summary"]["channels_down"] == {}
    assert data["summary"]["failed"] == 1  # his churn message (his review waits: min_gap)
    assert len(smtp.messages) == DUE - 1
    errors = [e for e in data["errors"] if e["key"] == refused]
    assert errors and all("550" in e["message"] for e in errors)


def test_a_webhook_url_that_answers_404_is_tried_once_per_run(sample: Path, run_cli) -> None:
    with WebhookServer([404] * 100) as server:
        config = sample / "config.toml"
        text = re.sub(r'type = "outbox" .*\npath = "outbox"\nfrom = .*\nto = "email".*\n',
                      f'type = "webhook"\nurl = "{server.url}"\n',
                      config.read_text(encoding="utf-8"))
        config.write_text(text, encoding="utf-8")
        result = run_cli(sample, "--now", DAY0, "sync")
        assert result.code == 4
        assert "channel email is down" in result.out
        # A webhook is keyed by the row: 배수지's malformed address is not needed.
        assert f"{len(DAY0_SENDS_NO_ADDRESS)} send(s) wait for the next run" in result.out
        assert len(server.requests) == 1


def test_a_lost_answer_to_the_message_is_uncertain_and_never_sent_again(
        sample: Path, run_cli, monkeypatch) -> None:
    dropped, silent = "minjun.choi@example.com", "jihoon.lee@example.com"
    with SmtpServer(users={"op": "right"},
                    lose_reply={dropped: "drop", silent: "silence"}) as smtp:
        use_smtp(sample, smtp.port, extra="\ntimeout = 1")
        monkeypatch.setenv("SMTP_PASSWORD", "right")
        result = run_cli(sample, "--now", DAY0, "--json", "sync")
        data = json.loads(result.out)
        assert data["summary"]["uncertain"] == 2, result.out  # one send each
        assert data["summary"]["sent"] == DUE - 2
        assert data["summary"]["channels_down"] == {} and data["summary"]["failed"] == 0
        assert len(smtp.messages) == DUE  # the server did get every message
        sends = ledger_sends(sample)
        for key in (dropped, silent):
            assert [status for status, _ in sends[key]] == ["uncertain"]
            assert all("not sent again" in detail for _, detail in sends[key])
        # A bounce or reply to an uncertain send is matched like any other: the ledger
        # holds the Message-ID the server got.
        with sqlite3.connect(sample / ".sheetcrm/state.db") as db:
            stored = {row[0] for row in db.execute(
                "SELECT message_id FROM sends WHERE key IN (?, ?)", (dropped, silent))}
        received = {str(m.message["Message-ID"]) for m in smtp.messages
                    if set(m.rcpt_tos) & {dropped, silent}}
        assert len(received) == 2 and stored == received

        result = run_cli(sample, "--now", "2026-11-23T10:10", "--json", "sync")
        assert result.code == 0, result.err
        summary = json.loads(result.out)["summary"]
        assert summary["sent"] == summary["uncertain"] == 0
        assert len(smtp.messages) == DUE  # nothing was sent twice
    assert ledger_sends(sample)[dropped] == sends[dropped]


def test_addresses_the_server_cannot_take_fail_those_customers_only(
        sample: Path, run_cli, monkeypatch) -> None:
    replace_addresses(sample, {
        "chaerin.park@example.com": "chaerin@예시.한국",         # IDNA: goes through
        "eunbi.noh@example.com": "은비@example.com",             # needs SMTPUTF8
        "jimin.seo@example.com": "j" * 2000 + "@example.com",    # too long for SMTP
    })
    refused, busy = "gildong.hong@example.com", "taehyun.lim@example.com"
    with SmtpServer(users={"op": "right"}, smtputf8=False,
                    refuse={refused: "550 5.1.1 No such user",
                            busy: "450 4.2.1 Mailbox busy"}) as smtp:
        use_smtp(sample, smtp.port)
        monkeypatch.setenv("SMTP_PASSWORD", "right")
        result = run_cli(sample, "--now", DAY0, "--json", "sync")
    data = json.loads(result.out)
    assert data["summary"]["channels_down"] == {}
    assert data["summary"]["failed"] == 4  # three failed, one to retry
    assert data["summary"]["sent"] == DUE - 4
    # Everyone else got their mail, the Hangul domain in its IDNA form.
    assert len(smtp.messages) == DUE - 4
    assert ["chaerin@xn--vv4b11d.xn--3e0b707e"] in [m.rcpt_tos for m in smtp.messages]
    errors = {e["key"][:30]: e["message"] for e in data["errors"]}
    assert "SMTPUTF8" in errors["은비@example.com"]
    assert "2012 characters" in errors["j" * 30] and "254" in errors["j" * 30]
    assert "550" in errors[refused] and "will retry" not in errors[refused]
    assert "450" in errors[busy] and "will retry" in errors[busy]
    statuses = {key[:30]: [s for s, _ in sends] for key, sends in ledger_sends(sample).items()}
    assert statuses["은비@example.com"] == ["failed"]
    assert statuses[busy] == ["retry"]


def test_a_webhook_url_path_never_reaches_the_sheet_the_ledger_or_the_output(
        sample: Path, run_cli, monkeypatch) -> None:
    token = "T0AAA/B0BBB/xoxb-s3cret-t0ken-in-the-path"
    replies = [400, 422, Reply(200, delay=3.0), 503,
               Reply(302, headers={"Location": f"/services/{token}/moved"})]
    with WebhookServer(replies, path=f"/services/{token}") as server:
        monkeypatch.setenv("HOOK_URL", f"{server.url}?key=q-{token}")
        use_webhook(sample, "${HOOK_URL}", extra="timeout = 0.5\nretries = 0\n")
        outputs, stored = [], []
        for now, json_flag in [(DAY0, ["--json"]), ("2026-11-23T10:10", []),
                               ("2026-11-23T10:20", ["--json"]), ("2026-11-23T10:30", [])]:
            result = run_cli(sample, "--now", now, *json_flag, "sync")
            outputs.append(result.out + result.err)
            stored.append(flows(sample).encode())  # the error cells
            stored += [f.read_bytes() for f in (sample / ".sheetcrm").iterdir()]  # the ledger
        result = run_cli(sample, "--now", "2026-11-23T10:40", "check")
        outputs.append(result.out + result.err)
    # Failed twice, down three runs in a row (timeout, 503, 302), then all sent.
    assert len(server.requests) > 5
    assert all(token in r.target for r in server.requests)  # the URL was used as written ...
    everything = "\n".join(outputs)
    for failure in ("HTTP 400", "HTTP 422", "no answer within 0.5 s", "HTTP 503", "HTTP 302"):
        assert failure in everything
    assert f"http://127.0.0.1:{server.port}" in everything
    assert "s3cret" not in everything  # ... and shown nowhere
    assert b"HTTP 400" in stored[0]  # the first run wrote the error cell
    assert not [data for data in stored if b"s3cret" in data]
    details = [d for sends in ledger_sends(sample).values() for _, d in sends]
    assert any("HTTP 400" in d for d in details)


def test_a_bad_webhook_url_from_the_environment_is_reported_without_its_path(
        sample: Path, run_cli, monkeypatch) -> None:
    use_webhook(sample, "${HOOK_URL}")
    for bad in ("ftp://hooks.example.com/services/s3cret", "https://hooks.example.com/s3cret x",
                "hooks.example.com/services/s3cret"):
        monkeypatch.setenv("HOOK_URL", bad)
        for args in (["check"], ["--json", "sync"], ["sync"]):
            result = run_cli(sample, "--now", DAY0, *args)
            assert result.code == 2, result.out + result.err
            output = result.out + result.err
            assert "channels.email.url" in output
            assert "s3cret" not in output


def test_check_connect_logs_in_to_smtp_and_sends_nothing(sample: Path, run_cli,
                                                         monkeypatch) -> None:
    with SmtpServer(users={"op": "right"}) as smtp:
        use_smtp(sample, smtp.port)
        monkeypatch.setenv("SMTP_PASSWORD", "wrong")
        result = run_cli(sample, "--now", DAY0, "--json", "check", "--connect")
        found = [f for f in json.loads(result.out)["findings"] if f["where"] == "channels.email"]
        assert result.code == 1 and found[0]["level"] == "error"
        assert "login as 'op' refused" in found[0]["message"]
        assert "wrong" not in result.out

        monkeypatch.setenv("SMTP_PASSWORD", "right")
        result = run_cli(sample, "--now", DAY0, "--json", "check", "--connect")
        found = [f for f in json.loads(result.out)["findings"] if f["where"] == "channels.email"]
        assert found[0]["level"] == "info" and f"127.0.0.1:{smtp.port}" in found[0]["message"]
        assert smtp.messages == []
