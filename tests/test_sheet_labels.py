"""The words sheetcrm writes into its cells follow the config's ``language``, and are
read back in either language.

An operator who turns ``language`` from Korean to English (or back) keeps a sheet
full of cells written the other way: on a lost or new ledger, the flow column must
still say where each customer stands (nothing is sent twice) and the opt-out, flow and
error columns must still read as sheetcrm's own (not the operator's, which sync would
refuse to overwrite).
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from sheetcrm.core.projection import (
    column_ownership,
    enrollments_from_sheet,
    written_by_sheetcrm,
)
from sheetcrm.ledger import Ledger
from sheetcrm.model import EnrollmentStatus, Event, EventKind, Record
from tests.support.journeys import World

CONVERTED = {"ko": "전환(목표 달성)", "en": "converted (goal met)"}
NEXT = {"ko": "다음", "en": "next"}
OPTED_OUT = {"ko": "수신 거부", "en": "opted out"}


def speak(world: World, language: str, opt_out: bool = False) -> None:
    """The config's top-level ``language`` (and an opt-out column when asked)."""
    path = world.folder / "config.toml"
    text = path.read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("language ="))
    if opt_out and 'opt_out = "수신 거부일"' not in text:
        text = text.replace('last_sent = "최근 발송"',
                            'last_sent = "최근 발송"\nopt_out = "수신 거부일"')
    path.write_text(f'language = "{language}"\n{text}\n', encoding="utf-8")


def lose_the_ledger(world: World) -> None:
    for path in world.folder.glob("state.db*"):
        path.unlink()


@pytest.mark.parametrize(("written", "read"), [("ko", "en"), ("en", "ko")])
def test_a_sheet_written_in_one_language_keeps_its_flow_states_in_the_other(
        tmp_path: Path, written: str, read: str) -> None:
    w = World.create(tmp_path, {})
    speak(w, written)
    w.customers = {"a@x.com": {"applied": w.date(-1)}, "b@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    # b pays (and has started the course): the payment flow ends, converted
    w.customers["b@x.com"].update(paid="O", login=f"{w.date(0)} 12:00")
    w.write_sheet()
    w.sync(1)
    flows = {key: row["자동화 흐름"] for key, row in w.sheet().items()}
    assert flows["a@x.com"] == f"payment 1/3 · {NEXT[written]} {w.date(2)} 10:00"
    assert flows["b@x.com"] == f"payment 1/3 {CONVERTED[written]} {w.date(1)}"

    speak(w, read)
    lose_the_ledger(w)
    result = w.sync(2)
    assert [(s.key, s.flow, s.step) for s in result.plan.sends] == [("a@x.com", "payment", 1)]
    assert result.plan.errors == []
    assert w.statuses()[("b@x.com", "payment")] == "converted"
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 2)]  # steps 1 and 2
    assert w.messages("b@x.com") == [("payment", 1, 0)]
    again = {key: row["자동화 흐름"] for key, row in w.sheet().items()}
    assert again["a@x.com"] == f"payment 2/3 · {NEXT[read]} {w.date(4)} 10:00"
    assert again["b@x.com"] == f"payment 1/3 {CONVERTED[read]} {w.date(1)}"


@pytest.mark.parametrize(("written", "read"), [("ko", "en"), ("en", "ko")])
def test_an_opt_out_cell_is_rewritten_in_the_new_language_and_stays_sheetcrms_own(
        tmp_path: Path, written: str, read: str) -> None:
    w = World.create(tmp_path, {})
    speak(w, written, opt_out=True)
    w.customers = {"a@x.com": {"applied": w.date(-3)}}
    w.write_sheet()
    w.sync(0)
    ledger = Ledger.open(tmp_path / "state.db")
    ledger.record_event(Event(source="unsubscribe", event_id="t1", kind=EventKind.OPT_OUT,
                              key="a@x.com", at=w.day(1).astimezone(UTC)))
    ledger.close()
    w.sync(1)
    assert w.sheet()["a@x.com"]["수신 거부일"] == f"{w.date(1)} {OPTED_OUT[written]}"

    speak(w, read, opt_out=True)
    w.sync(2)  # the ledger kept: the cell now in the config's new language
    assert w.sheet()["a@x.com"]["수신 거부일"] == f"{w.date(1)} {OPTED_OUT[read]}"
    # A new ledger finds the other language's words in the column and takes them for
    # its own: no column is refused.
    speak(w, written, opt_out=True)
    config = w.config
    row = w.sheet()["a@x.com"]
    record = Record(line=2, key="a@x.com", values={}, current=row)
    origins, foreign = column_ownership(list(row), [record], config, {})
    assert foreign == []
    assert origins["수신 거부일"] == origins["자동화 흐름"] == "recognised"


def test_every_label_sheetcrm_writes_is_read_back_in_both_languages(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    config = w.config  # English: the labels are still read in Korean
    row = Record(line=2, key="a@x.com", values={}, current={})
    flow_cells = {
        "payment 3/3 완료 2026-11-27 (대조군)": EnrollmentStatus.FINISHED,
        "payment 3/3 done 2026-11-27 (holdout)": EnrollmentStatus.FINISHED,
        "payment 1/3 전환(목표 달성) 2026-11-25": EnrollmentStatus.CONVERTED,
        "payment 1/3 converted (goal met) 2026-11-25": EnrollmentStatus.CONVERTED,
        "payment 1/3 종료(답장) 2026-11-25": EnrollmentStatus.REPLIED,
        "payment 1/3 ended (replied) 2026-11-25": EnrollmentStatus.REPLIED,
        "payment 1/3 종료(조건 해제) 2026-11-25": EnrollmentStatus.LEFT,
        "payment 1/3 ended (no longer true) 2026-11-25": EnrollmentStatus.LEFT,
        "payment 1/3 실패 2026-11-25": EnrollmentStatus.FAILED,
        "payment 1/3 failed 2026-11-25": EnrollmentStatus.FAILED,
    }
    for cell, status in flow_cells.items():
        assert written_by_sheetcrm("flow", cell, row, config), cell
        assert enrollments_from_sheet("a@x.com", cell, config)["payment"].status == status
    for cell in ("2026-11-28 10:00 p1 (e) (확인 필요)", "2026-11-28 10:00 p1 (e) (to be checked)"):
        assert written_by_sheetcrm("last_sent", cell, row, config), cell
    for cell in ("클릭 2 · 답장 1 · 최근 2026-11-28", "clicks 2 · replies 1 · latest 2026-11-28"):
        assert written_by_sheetcrm("engagement", cell, row, config), cell
    for cell in ("2026-11-28 수신 거부", "2026-11-28 opted out"):
        assert written_by_sheetcrm("opt_out", cell, row, config), cell
    for cell in ("2026-11-28 메일 반송(5.1.1): 550 User unknown",
                 "2026-11-28 mail bounced (5.1.1): 550 User unknown",
                 "2026-11-25 알림톡·대체 문자 미전달(3020): 카카오톡 유저가 아님",
                 "2026-11-25 AlimTalk and its SMS substitute not delivered (3020): no Kakao",
                 "2026-11-24 문자 미전달: 사유 없음",
                 "2026-11-24 text message not delivered: no reason given"):
        assert written_by_sheetcrm("error", cell, row, config), cell
    assert not written_by_sheetcrm("opt_out", "2026-11-28 거부함", row, config)
    assert not written_by_sheetcrm("error", "2026-11-25 mail bounced - check", row, config)
