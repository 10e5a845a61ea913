"""The two-yearly consent re-notice (정보통신망법 §50⑧) the sample ships commented out.

Uncommented as it is, it sends each customer who agreed to ads, two years after the
date they agreed (동의일), an informational message saying who sends, that date and
how to withdraw: once, recorded like every send, and not again until two more years.
"""

from __future__ import annotations

import json
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from tests.support.sample import rows_by_key

FLOW = "수신동의_확인"
SOMI = "somi.jeon@example.com"  # 동의일 2024-11-20: two years on 2026-11-20 (730 days)


def uncomment(folder: Path) -> None:
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    block = re.search(r'^# \[flows\."수신동의_확인"\]\n(?:# .*\n)+', text, re.M)
    assert block is not None, "the sample ships the re-notice flow, commented"
    lines = [line.removeprefix("# ") for line in block.group(0).splitlines(keepends=True)]
    config.write_text(text.replace(block.group(0), "".join(lines)), encoding="utf-8")


def sync(run_cli, folder: Path, now: str) -> dict:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


def renotices(data: dict) -> list[str]:
    return [s["key"] for s in data["sends"] if s["flow"] == FLOW]


def test_the_shipped_flow_is_commented_out_and_sends_nothing(sample: Path, run_cli) -> None:
    assert renotices(sync(run_cli, sample, "2026-11-23T10:00")) == []


def test_uncommented_it_checks_and_fires_two_years_after_the_consent_date_once(
        sample: Path, run_cli) -> None:
    uncomment(sample)
    checked = run_cli(sample, "--now", "2026-11-19T10:00", "--json", "check")
    findings = json.loads(checked.out)["findings"]
    assert not [f for f in findings if "consent_renotice" in f["message"] or FLOW in f["where"]]

    # Two years less a day after 2024-11-20: not yet, for anyone.
    assert renotices(sync(run_cli, sample, "2026-11-19T10:00")) == []
    # On the day and after, the customer whose consent is two years old gets it once.
    assert renotices(sync(run_cli, sample, "2026-11-20T10:00")) == [SOMI]
    assert renotices(sync(run_cli, sample, "2026-11-21T10:00")) == []
    assert renotices(sync(run_cli, sample, "2026-11-25T10:00")) == []

    subject = "[소담 클래스] 광고성 정보 수신동의 확인 안내"  # informational: no (광고)
    (message,) = [m for m in map(_parse, (sample / "outbox").glob("*.eml"))
                  if m["Subject"] == subject]
    assert message["To"] == SOMI
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "전소미님은 2024년 11월 20일에 소담 클래스의 광고성 정보" in text
    assert "보낸 곳: 소담 클래스" in text and '"수신거부"라고 답장해 주세요' in text

    _, rows = rows_by_key(sample)
    assert rows[SOMI]["자동화 흐름"].startswith(f"{FLOW} 1/1")


def test_it_comes_again_two_years_after_the_last_notice(sample: Path, run_cli) -> None:
    uncomment(sample)
    assert renotices(sync(run_cli, sample, "2026-11-20T10:00")) == [SOMI]
    # Two years (730 days) after the first notice, not a day before (the others,
    # whose consent was given in 2026, get their first notice in between).
    assert SOMI not in renotices(sync(run_cli, sample, "2028-11-18T10:00"))
    # By then she is dormant and a churn risk too: the flows written above go first
    # and min_gap spaces the messages out.
    later = [*renotices(sync(run_cli, sample, "2028-11-19T10:00")),
             *renotices(sync(run_cli, sample, "2028-11-19T11:30"))]
    assert later.count(SOMI) == 1


def _parse(path: Path) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())  # type: ignore[return-value]
