"""The ledger's tables, and the migration of a file an older version wrote.

Tables (``CREATE ... IF NOT EXISTS``) and columns (``MIGRATIONS``) are only ever
added, so every older file can be brought up to this schema in place; a read-only
open upgrades a copy in memory instead, so that ``plan`` after an upgrade works, and
changes nothing, before the first ``sync``.
Timestamps are stored as UTC ISO strings.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

# 5: refused_events (webhooks turned away, for status); 6: providers' delivery reports;
# 7: customer_tags and tag_changes (history), test_sends (test-send);
# 8: rulesets and ruleset_pending (accepted rule sets), sends.ruleset; 9: latest_sends
# and the indexes that load recent sends only (``recent``)
SCHEMA_VERSION = 9

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS enrollments (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL,
    flow        TEXT NOT NULL,
    entry       INTEGER NOT NULL,          -- 1 for the first entry, 2 after a re-entry ...
    entered_at  TEXT NOT NULL,
    anchor_at   TEXT,                      -- step offsets count from here
    next_step   INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL,             -- active | converted | left | finished | failed
    exited_at   TEXT,
    exit_reason TEXT,
    holdout     INTEGER NOT NULL DEFAULT 0, -- control group: tracked, never messaged
    via         TEXT NOT NULL DEFAULT 'trigger', -- trigger | handoff | sheet
    UNIQUE (key, flow, entry)
);
CREATE TABLE IF NOT EXISTS sends (
    idem_key    TEXT PRIMARY KEY,          -- key + flow + entry + step
    key         TEXT NOT NULL,
    flow        TEXT NOT NULL,
    entry       INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    template    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,             -- pending | sent | retry | failed | uncertain | skipped
    variant     TEXT,                      -- A/B variant, when the step has variants
    attempts    INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    message_id  TEXT,
    detail      TEXT,
    run_id      INTEGER,
    delivery    TEXT,                      -- accepted | delivered | failed (providers' reports)
    delivered_at TEXT,
    delivery_detail TEXT,
    ruleset     TEXT                       -- the rule set's short hash (rulesets)
);
CREATE INDEX IF NOT EXISTS sends_by_key ON sends (key);
CREATE INDEX IF NOT EXISTS sends_by_entry
    ON sends (key, flow, entry, COALESCE(finished_at, created_at));
CREATE INDEX IF NOT EXISTS sends_by_time ON sends (COALESCE(finished_at, created_at));
-- Per customer, the latest send that may have reached them and the latest one a
-- provider reported on (idempotency keys), kept as they happen: a run loads these
-- two and the recent sends, not the whole history (``recent``).
CREATE TABLE IF NOT EXISTS latest_sends (
    key          TEXT PRIMARY KEY,
    delivered    TEXT,                     -- sent or uncertain, the latest finished
    delivered_at TEXT,
    reported     TEXT,                     -- delivery delivered or failed, the latest
    reported_at  TEXT
);
CREATE INDEX IF NOT EXISTS sends_by_message_id ON sends (message_id);
-- The row key behind the digest that ends an idempotency key (sc-FLOW-eN-sN-DIGEST),
-- for the customers of sends ``retention`` forgot: the unsubscribe link in an old
-- message still names its customer. One row per customer, however many messages.
CREATE TABLE IF NOT EXISTS forgotten_keys (
    digest      TEXT PRIMARY KEY,
    key         TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS enrollments_by_key ON enrollments (key, flow);
-- The sheet columns sheetcrm writes and how each became its own: created (appended
-- by sheetcrm), empty (blank when first written), adopted (the operator's say-so in
-- [writeback] adopt) or recognised (every cell already in sheetcrm's own format).
CREATE TABLE IF NOT EXISTS owned_columns (
    name        TEXT PRIMARY KEY,
    origin      TEXT NOT NULL,
    since       TEXT NOT NULL
);
-- What came back (opt-outs, clicks, bounces, replies, providers' webhooks). Stored
-- before the sender gets its 2xx, once per (source, event_id) however often it is
-- delivered; applied_at marks the events a run has written into the sheet.
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    key         TEXT NOT NULL,
    idem_key    TEXT,
    at          TEXT NOT NULL,
    machine     INTEGER NOT NULL DEFAULT 0,
    data        TEXT NOT NULL DEFAULT '{}',
    applied_at  TEXT,
    UNIQUE (source, event_id)
);
CREATE INDEX IF NOT EXISTS events_by_key ON events (key);
-- A run loads the events not yet applied and those its conditions read; pruning
-- (``retention``) walks them by time.
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, at);
CREATE INDEX IF NOT EXISTS events_unapplied ON events (kind) WHERE applied_at IS NULL;
-- Webhooks the endpoint turned away (a bad signature, a body too large, a payment the
-- provider does not confirm): counts by event name and reason, never the request.
CREATE TABLE IF NOT EXISTS refused_events (
    name        TEXT NOT NULL,             -- [events.NAME], or '?' for a name not configured
    reason      TEXT NOT NULL,
    status      INTEGER NOT NULL,          -- the HTTP status answered
    count       INTEGER NOT NULL,
    first_at    TEXT NOT NULL,
    last_at     TEXT NOT NULL,
    PRIMARY KEY (name, reason)
);
-- The tags each customer had at the last sync, and every change of them since, for
-- ``sheetcrm history`` (tag lists are JSON arrays of tag names).
CREATE TABLE IF NOT EXISTS customer_tags (
    key         TEXT PRIMARY KEY,
    tags        TEXT NOT NULL,
    since       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tag_changes (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL,
    at          TEXT NOT NULL,
    run_id      INTEGER,
    added       TEXT NOT NULL,
    removed     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tag_changes_by_key ON tag_changes (key);
CREATE INDEX IF NOT EXISTS tag_changes_by_time ON tag_changes (at);
-- Steps rendered for one customer and sent only to the operator (``sheetcrm
-- test-send``). Apart from ``sends`` on purpose: a test is never the customer's send
-- (no idempotency key of theirs, no frequency cap, no count in report or status).
CREATE TABLE IF NOT EXISTS test_sends (
    id          INTEGER PRIMARY KEY,
    idem_key    TEXT NOT NULL UNIQUE,      -- the test's own key (Message-ID, webhook-id)
    key         TEXT NOT NULL,             -- the customer it was rendered for
    flow        TEXT NOT NULL,
    step        INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    template    TEXT NOT NULL,
    variant     TEXT,
    kind        TEXT NOT NULL,
    recipient   TEXT NOT NULL,             -- the operator's address or number
    subject     TEXT NOT NULL,
    status      TEXT NOT NULL,             -- pending | sent | failed | uncertain
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    message_id  TEXT,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS test_sends_by_key ON test_sends (key);
-- Every rule set (tags + flows + templates) a run accepted, the latest one in force;
-- hash: the first 8 hex digits of the sha256 of ``body``, its canonical JSON.
CREATE TABLE IF NOT EXISTS rulesets (
    id          INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    body        TEXT NOT NULL
);
-- A valid edit that would message many customers at once, waiting to be confirmed.
CREATE TABLE IF NOT EXISTS ruleset_pending (
    hash        TEXT PRIMARY KEY,
    since       TEXT NOT NULL,
    newly       INTEGER NOT NULL           -- customers it would newly message
);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    command     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,             -- running | ok | channel_down | sending_stopped |
                                           -- failed | interrupted (killed while running)
    summary     TEXT
);
"""

# Columns added after version 1: (table, column, definition).
MIGRATIONS = [
    ("enrollments", "holdout", "INTEGER NOT NULL DEFAULT 0"),
    ("enrollments", "via", "TEXT NOT NULL DEFAULT 'trigger'"),
    ("sends", "variant", "TEXT"),
    # Version 6: what a provider reported after accepting (texting: Solapi, NHN Cloud).
    ("sends", "delivery", "TEXT"),  # accepted | delivered | failed; NULL: no report comes
    ("sends", "delivered_at", "TEXT"),
    ("sends", "delivery_detail", "TEXT"),
    # Version 8: the rule set (its short hash) the send came from.
    ("sends", "ruleset", "TEXT"),
]


def iso(dt: datetime) -> str:
    """Timestamps are stored as UTC ISO strings."""
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    return int(row[0]) if row else 1


def upgraded_copy(conn: sqlite3.Connection) -> sqlite3.Connection:
    """A ledger from an older version, read-only: upgrade a copy in memory, not the file.

    ``plan`` after an upgrade must work before the first ``sync`` migrates the file.
    """
    memory = sqlite3.connect(":memory:", isolation_level=None)
    conn.backup(memory)
    conn.close()
    migrate(memory)
    return memory


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a ledger written by an older version up to this schema, in place."""
    conn.executescript(SCHEMA)  # tables added since (CREATE ... IF NOT EXISTS)
    for table, column, definition in MIGRATIONS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    if schema_version(conn) < 9:
        fill_latest_sends(conn)


#: A send that may have reached the customer (``model.DELIVERED``), and a provider's
#: final word on one.
DELIVERED_SQL = "('sent', 'uncertain')"
REPORTED_SQL = "('delivered', 'failed')"


def fill_latest_sends(conn: sqlite3.Connection) -> None:
    """Version 9: ``latest_sends`` from the sends recorded so far.

    Reads only ``sends`` (every version has it), so it applies the same after version
    7 or 8. SQLite returns the row holding the ``MAX`` for the bare columns.
    """
    conn.execute(
        "INSERT OR REPLACE INTO latest_sends (key, delivered, delivered_at)"
        " SELECT key, idem_key, MAX(COALESCE(finished_at, created_at)) FROM sends"
        f" WHERE status IN {DELIVERED_SQL} GROUP BY key")
    conn.execute(
        "INSERT INTO latest_sends (key, reported, reported_at)"
        " SELECT key, idem_key, MAX(COALESCE(delivered_at, finished_at, created_at))"
        f" FROM sends WHERE delivery IN {REPORTED_SQL} GROUP BY key"
        " ON CONFLICT (key) DO UPDATE SET reported = excluded.reported,"
        " reported_at = excluded.reported_at")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                 (str(SCHEMA_VERSION),))
