"""End to end on the shipped sample: `sheetcrm plan`, `sync`, `check` through the real CLI.

The sample is copied to a temporary folder; time is pinned with --now. The counts
below follow from the rows in sample_sheets/customers.csv and the rules in
config.toml (see the comments next to each figure).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from tests.support.sample import (
    CSV,
    DAY0,
    DAY0_SENDS,
    DAY0_SPACED,
    DAY2,
    HOLDOUT,
    UNREADABLE_RECIPIENT,
    rows_by_key,
    tree_digest,
)


def sync_json(run_cli, folder: Path, now: str) -> dict:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


def test_first_sync_tags_sends_and_writes_back(sample: Path, run_cli) -> None:
    original = (sample / CSV).read_bytes()
    data = sync_json(run_cli, sample, DAY0)

    summary = data["summary"]
    assert summary["rows_read"] == 26
    assert {(s["key"], s["flow"]) for s in data["sends"]} == DAY0_SENDS
    assert all(s["result"] == "sent" and s["step"] == 1 for s in data["sends"])
    assert summary["sent"] == len(DAY0_SENDS) == 14
    held = {(h["key"], h["flow"]): h for h in data["held"]}
    assert set(held) == {HOLDOUT, *DAY0_SPACED, UNREADABLE_RECIPIENT}
    assert held[HOLDOUT]["skip"] is True
    for spaced in DAY0_SPACED:  # deferred, not skipped: they go on a later run
        assert held[spaced]["reason"].startswith("min_gap 1h: another message goes to this")
        assert held[spaced]["skip"] is False
    assert held[UNREADABLE_RECIPIENT]["reason"].startswith("the cell '이메일' could not be read")
    assert len(list((sample / "outbox").glob("*.eml"))) == 14

    # Row errors: a blank key and a duplicated key (both rows) are never acted on; an
    # impossible date, an unknown bool and a malformed email make only their field
    # unknown on that row.
    messages = " | ".join(e["message"] for e in data["errors"])
    assert summary["row_errors"] == 6
    assert "'2026-02-30' is not a date" in messages
    assert "'몰라'" in messages
    assert "is blank" in messages
    assert messages.count("gayoung.moon@example.com") == 2
    assert "'suzy.bae@'" in messages

    header, rows = rows_by_key(sample)
    # Owned columns that were missing are appended at the end of the header.
    assert header[-2:] == ["최근 발송", "오류"]
    assert rows["soohyun.kim@example.com"]["상태 태그"] == "결제 대기, 결제 유도"
    assert rows["seoyeon.jung@example.com"]["상태 태그"] == "우수 참여자"
    assert rows["hyunwoo.baek@example.com"]["상태 태그"] == "이탈 가능, 후기 미작성, 휴면"
    # 3 mails unopened by the sheet's say-so, but nothing sent yet: not a churn risk.
    assert rows["jiho.yoon@example.com"]["상태 태그"] == "우수 참여자"
    assert rows["doyoon.kang@example.com"]["자동화 흐름"] == (
        "payment 1/3 · next 2026-11-25 10:00 (holdout)")
    assert rows["soohyun.kim@example.com"]["자동화 흐름"] == "payment 1/3 · next 2026-11-25 10:00"
    assert rows["soohyun.kim@example.com"]["최근 발송"] == (
        "2026-11-23 10:00 payment_reminder (email)")
    assert rows["yuna.shin@example.com"]["오류"].startswith("신청일: '2026-02-30' is not a date")
    assert rows["yuna.shin@example.com"]["오류"].endswith(
        "until it is fixed, these wait: tags '결제 대기' and flows 'payment'")
    # Her other tags do not read the date: not paid, and she clicked.
    assert rows["yuna.shin@example.com"]["상태 태그"] == "결제 유도"
    assert rows["yuna.shin@example.com"]["자동화 흐름"] == ""  # the payment flow waits

    # Every cell outside the owned columns is exactly as before, bytes included:
    # the BOM and CRLF line endings survive, and the multi-line memo too.
    after = (sample / CSV).read_bytes()
    assert after.startswith(b"\xef\xbb\xbf")
    assert after.count(b"\r\n") == original.count(b"\r\n")
    _, before_rows = _parse(original)
    _, after_rows = _parse(after)
    for before_row, after_row in zip(before_rows, after_rows, strict=True):
        assert after_row[:15] == before_row[:15]


def _parse(data: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return rows[0], rows[1:]


def test_second_sync_right_after_sends_nothing_and_writes_nothing(sample: Path, run_cli) -> None:
    sync_json(run_cli, sample, DAY0)
    csv_bytes = (sample / CSV).read_bytes()
    outbox = tree_digest(sample / "outbox")

    data = sync_json(run_cli, sample, "2026-11-23T10:05")
    assert data["sends"] == []
    assert data["summary"]["cells_written"] == 0
    assert (sample / CSV).read_bytes() == csv_bytes
    assert tree_digest(sample / "outbox") == outbox


def test_plan_changes_nothing_on_a_fresh_folder(sample: Path, run_cli) -> None:
    before = tree_digest(sample)
    result = run_cli(sample, "--now", DAY0, "plan")
    assert result.code == 0, result.err
    assert "would be sent" in result.out
    assert tree_digest(sample) == before
    assert not (sample / ".sheetcrm").exists()
    assert not (sample / "outbox").exists()


def test_plan_changes_nothing_after_a_sync_and_predicts_the_next(sample: Path, run_cli) -> None:
    sync_json(run_cli, sample, DAY0)
    before = tree_digest(sample)
    planned = run_cli(sample, "--now", DAY2, "--json", "plan")
    assert planned.code == 0, planned.err
    assert tree_digest(sample) == before

    done = sync_json(run_cli, sample, DAY2)
    plan_data = json.loads(planned.out)
    key = lambda s: (s["key"], s["flow"], s["step"])  # noqa: E731
    assert sorted(map(key, plan_data["sends"])) == sorted(map(key, done["sends"]))
    assert plan_data["writes"] == done["writes"]


def test_steps_follow_on_later_days_and_ads_need_consent(sample: Path, run_cli) -> None:
    sync_json(run_cli, sample, DAY0)
    data = sync_json(run_cli, sample, DAY2)

    sends = {(s["key"], s["flow"], s["step"]) for s in data["sends"]}
    # payment step 2 is an ad: sent where 수신 동의 is true ...
    for key in ("soohyun.kim@example.com", "sohee.han@example.com",
                "jimin.seo@example.com", "min.namgung@example.com"):
        assert (key, "payment", 2) in sends
    # ... skipped, with the reason, where it is not.
    held = {(h["key"], h["flow"], h["step"]): h for h in data["held"]}
    assert "no consent" in held[("eunbi.noh@example.com", "payment", 2)]["reason"]
    assert held[("eunbi.noh@example.com", "payment", 2)]["skip"] is True
    assert ("eunbi.noh@example.com", "payment", 2) not in sends
    # The holdout customer moves through the steps without a message.
    assert held[("doyoon.kang@example.com", "payment", 2)]["reason"].startswith("holdout")
    # onboarding day 3 guide (after 2d) for those who still have not started.
    for key in ("jihoon.lee@example.com", "junseo.oh@example.com", "jaeseok.yoo@example.com"):
        assert (key, "onboarding", 2) in sends
    # 조하은 applied on DAY0: two days later she is awaiting payment, and enters.
    assert ("haeun.cho@example.com", "payment", 1) in sends
    # churn and review second steps come after 3 days: not yet.
    assert not any(flow in ("churn", "review") and step == 2 for _, flow, step in sends)

    _, rows = rows_by_key(sample)
    assert rows["soohyun.kim@example.com"]["자동화 흐름"] == "payment 2/3 · next 2026-11-27 10:00"
    # A step held for lack of consent is skipped for good; the flow moves on.
    assert rows["eunbi.noh@example.com"]["자동화 흐름"] == "payment 2/3 · next 2026-11-27 10:00"


def test_paying_customer_leaves_the_payment_flow_as_converted(sample: Path, run_cli) -> None:
    sync_json(run_cli, sample, DAY0)
    path = sample / CSV
    text = path.read_bytes().decode("utf-8-sig")
    line = next(ln for ln in text.split("\r\n") if ln.startswith("김수현,"))
    paid_line = line.replace(",,X,O,X,", ",129000,O,O,X,", 1)
    assert paid_line != line
    path.write_bytes(b"\xef\xbb\xbf" + text.replace(line, paid_line).encode())

    data = sync_json(run_cli, sample, DAY2)
    assert {"key": "soohyun.kim@example.com", "flow": "payment", "action": "converted",
            "detail": "goal met"} in data["moves"]
    assert not any(s["key"] == "soohyun.kim@example.com" and s["flow"] == "payment"
                   for s in data["sends"])
    _, rows = rows_by_key(sample)
    flows = rows["soohyun.kim@example.com"]["자동화 흐름"].split(" | ")
    assert "payment 1/3 converted (goal met) 2026-11-25" in flows
    # Now paid and not yet started, she enters onboarding (and the review flow).
    assert "onboarding 1/3 · next 2026-11-27 10:00" in flows


def test_kill_switch_holds_every_send_but_updates_tags(sample: Path, run_cli) -> None:
    config = sample / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "paused = false", "paused = true"), encoding="utf-8")
    data = sync_json(run_cli, sample, DAY0)
    assert data["sends"] == []
    paused = [h for h in data["held"] if h["reason"].startswith("paused")]
    assert len(paused) == len(DAY0_SENDS) + len(DAY0_SPACED) == 18
    assert not any(h["skip"] for h in paused)
    assert not (sample / "outbox").exists()
    _, rows = rows_by_key(sample)
    assert rows["soohyun.kim@example.com"]["상태 태그"] == "결제 대기, 결제 유도"


def test_human_output_shows_summary_and_held_reasons(sample: Path, run_cli) -> None:
    run_cli(sample, "--now", DAY0, "sync")
    result = run_cli(sample, "--now", DAY2, "plan")
    assert result.code == 0
    assert "held back" in result.out
    assert "no consent to advertising" in result.out
    assert "holdout" in result.out
    assert re.search(r"26 rows read, \d+ tag changes", result.out)


def test_check_reports_bad_rows_and_renders_templates(sample: Path, run_cli) -> None:
    result = run_cli(sample, "--now", DAY0, "--json", "check")
    assert result.code == 1  # the sample has bad rows on purpose
    findings = json.loads(result.out)["findings"]
    where = {f["where"] for f in findings if f["level"] == "error"}
    assert "row 17" in where  # the blank key, on the sheet's row 17 (the header is row 1)
    assert not any("template" in f["message"] for f in findings)

    (sample / "templates" / "payment_reminder.j2").write_text(
        "{% block subject %}{{ name }} {{ coupon_code }}{% endblock %}"
        "{% block text %}hi{% endblock %}", encoding="utf-8")
    result = run_cli(sample, "--now", DAY0, "--json", "check")
    findings = json.loads(result.out)["findings"]
    assert any("coupon_code" in f["message"] for f in findings)


def test_config_error_names_key_path_and_exits_2(sample: Path, run_cli) -> None:
    config = sample / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'paid       = { column = "결제 여부", type = "bool" }',
        'paid       = { column = "결제 여부", type = "boolean" }'), encoding="utf-8")
    result = run_cli(sample, "plan")
    assert result.code == 2
    assert "fields.paid.type" in result.err
    assert "'boolean'" in result.err


def _mails(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Each customer's mails in the outbox: (subject, plain text)."""
    from email import policy
    from email.parser import BytesParser

    mails: dict[str, list[tuple[str, str]]] = {}
    for path in (folder / "outbox").glob("*.eml"):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        mails.setdefault(str(message["To"]), []).append((str(message["Subject"]), text))
    return mails


def test_a_second_message_to_one_customer_waits_out_min_gap(sample: Path, run_cli) -> None:
    sync_json(run_cli, sample, DAY0)
    assert sync_json(run_cli, sample, "2026-11-23T10:30")["sends"] == []
    an_hour = sync_json(run_cli, sample, "2026-11-23T11:00")
    # 백현우 qualified for three flows: one message an hour, in the config's order.
    assert {(s["key"], s["flow"]) for s in an_hour["sends"]} == {
        ("minjun.choi@example.com", "review"), ("yerin.jang@example.com", "review"),
        ("hyunwoo.baek@example.com", "churn")}
    two_hours = sync_json(run_cli, sample, "2026-11-23T12:00")
    assert {(s["key"], s["flow"]) for s in two_hours["sends"]} == {
        ("hyunwoo.baek@example.com", "review")}


def test_the_samples_mails_read_as_korean(sample: Path, run_cli) -> None:
    sync_json(run_cli, sample, DAY0)
    sync_json(run_cli, sample, "2026-11-23T11:00")
    mails = _mails(sample)
    # The review request comes after the course was opened, and with its particles.
    ((subject, text),) = [m for m in mails["minjun.choi@example.com"] if "어떠셨나요" in m[0]]
    assert subject == "최민준님, 데이터 분석은 어떠셨나요?"
    assert "데이터 분석을 들어주셔서 고맙습니다." in text
    ((subject, text),) = mails["chaerin.park@example.com"]
    assert subject == "박채린님, 엑셀 기초는 어떠셨나요?" and "엑셀 기초를 들어주셔서" in text
    # No review request to whom has not opened the course: the welcome mail only.
    welcome = "이지훈님, 파이썬 입문 수강을 환영합니다"
    assert [s for s, _ in mails["jihoon.lee@example.com"]] == [welcome]
    ((_, text),) = mails["soohyun.kim@example.com"]
    assert text.startswith("김수현님, 11월 1일에 신청하신 엑셀 기초 결제가")
    # Win-back mails are ads: (광고), and the footer.
    ((subject, text),) = [m for m in mails["hyunwoo.baek@example.com"] if "강의실" in m[0]]
    assert subject.startswith("(광고) 백현우님")
    assert "마지막 접속: 10월 10일 (토)" in text and "보낸 곳: 소담 클래스" in text
