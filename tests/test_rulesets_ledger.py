"""The accepted rule sets in the ledger (schema 8): kept in order, one edit waiting at a
time, sends stamped with the run's set, and a ledger from version 7 upgraded."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sheetcrm.ledger import SCHEMA_VERSION, Ledger

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_the_latest_accepted_set_is_in_force_and_one_edit_waits(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    assert ledger.rules_in_force() is None
    ledger.accept_rules("aaaa0001", '{"a":1}', NOW)
    ledger.accept_rules("aaaa0001", '{"a":1}', NOW)  # the same set: no new row
    ledger.hold_rules("bbbb0002", 40, NOW)
    ledger.hold_rules("cccc0003", 50, NOW)  # a newer edit replaces the waiting one
    assert ledger.pending_rules() == ("cccc0003", "2026-11-23T01:00:00+00:00", 50)
    ledger.accept_rules("cccc0003", '{"c":3}', NOW)
    assert ledger.pending_rules() is None
    ledger.accept_rules("aaaa0001", '{"a":1}', NOW)  # back to the first set
    assert ledger.rules_in_force() == ("aaaa0001", "2026-11-23T01:00:00+00:00", '{"a":1}')
    ledger.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        rows = db.execute("SELECT hash FROM rulesets ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["aaaa0001", "cccc0003", "aaaa0001"]


def test_a_ledger_from_version_7_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Ledger.open(path).close()
    with sqlite3.connect(path) as db:  # as version 7 left it
        db.execute("DROP TABLE rulesets")
        db.execute("DROP TABLE ruleset_pending")
        db.execute("ALTER TABLE sends DROP COLUMN ruleset")
        db.execute("INSERT INTO sends (idem_key, key, flow, entry, step, channel, template,"
                   " kind, status, created_at, run_id) VALUES ('k', 'a@x.com', 'f', 1, 0, 'e',"
                   " 't', 'transactional', 'sent', '2026-11-22T00:00:00+00:00', 3)")
        db.execute("UPDATE meta SET value = '7' WHERE name = 'schema_version'")
    readonly = Ledger.open_readonly(path)  # plan: an upgraded copy, the file left as it is
    assert readonly.rules_in_force() is None and readonly.send_rulesets("a@x.com") == {}
    readonly.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'"
                          ).fetchone() == ("7",)
    ledger = Ledger.open(path)
    ledger.stamp_sends(3, "dddd0004")
    assert ledger.send_rulesets("a@x.com") == {("f", 1, 0): "dddd0004"}
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'"
                          ).fetchone() == (str(SCHEMA_VERSION),)
