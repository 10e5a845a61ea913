"""Delivery state in the ledger: a send the provider accepted waits for its report, and
a ledger written before delivery state existed is brought up to it (schema version 6)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sheetcrm.ledger import Applied, Ledger
from sheetcrm.ledger.schema import SCHEMA_VERSION
from sheetcrm.model import DeliveryReport, DeliveryState, SendRecord, SendStatus

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def claim(ledger: Ledger, key: str) -> str:
    idem = f"{key}/payment/1/0"
    ledger.claim_send(SendRecord(idem, key, "payment", 1, 0, "kakao", "reminder",
                                 "transactional", SendStatus.PENDING, NOW), run_id=1)
    return idem


def test_only_a_send_the_provider_accepted_waits_for_a_report(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    ledger.finish_send(claim(ledger, "a"), SendStatus.SENT, NOW, message_id="M1",
                       accepted=True)
    ledger.finish_send(claim(ledger, "b"), SendStatus.SENT, NOW, message_id="<x@y>")
    assert ledger.count_deliveries() == {DeliveryState.ACCEPTED: 1,
                                         DeliveryState.DELIVERED: 0, DeliveryState.FAILED: 0}
    assert list(ledger.awaiting_report("kakao")) == ["M1"]
    report = DeliveryReport("solapi", "M1", DeliveryState.FAILED, "3043 단말기 Power off")
    assert ledger.apply_delivery(report, NOW) is Applied.APPLIED
    assert ledger.apply_delivery(DeliveryReport("smtp", "<x@y>", DeliveryState.DELIVERED),
                                 NOW) is Applied.UNKNOWN  # no report was awaited there
    [failed] = ledger.latest_deliveries(DeliveryState.FAILED, 5)
    assert (failed.key, failed.reason, failed.delivered_at) == (
        "a", "3043 단말기 Power off", "2026-11-25T01:00:00+00:00")
    ledger.close()


def test_a_ledger_from_before_delivery_state_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    ledger = Ledger.open(path)
    ledger.finish_send(claim(ledger, "a"), SendStatus.SENT, NOW, message_id="M1")
    ledger.close()
    old = sqlite3.connect(path)
    for column in ("delivery", "delivered_at", "delivery_detail"):
        old.execute(f"ALTER TABLE sends DROP COLUMN {column}")
    old.execute("DROP INDEX sends_by_message_id")
    old.execute("UPDATE meta SET value = '5' WHERE name = 'schema_version'")
    old.commit()
    old.close()

    readonly = Ledger.open_readonly(path)  # plan after an upgrade: a copy, the file stays
    assert readonly.count_deliveries()[DeliveryState.ACCEPTED] == 0
    readonly.close()
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(sends)")}
    assert "delivery" not in columns

    ledger = Ledger.open(path)
    ledger.finish_send(claim(ledger, "b"), SendStatus.SENT, NOW, message_id="M2",
                       accepted=True)
    assert list(ledger.awaiting_report("kakao")) == ["M2"]
    ledger.close()
    version = sqlite3.connect(path).execute(
        "SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION
