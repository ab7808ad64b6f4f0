-- Hot-list refreshes: what was fetched when, how it differed from the previous list, what was
-- dropped by law (counts only; the list itself is kept encrypted beside the database).
CREATE TABLE hotlist_refreshes (
    id          INTEGER PRIMARY KEY,
    list_name   TEXT NOT NULL,
    at          TEXT NOT NULL,
    outcome     TEXT NOT NULL,          -- ok | failed | imported
    entries     INTEGER NOT NULL DEFAULT 0,
    added       INTEGER NOT NULL DEFAULT 0,
    removed     INTEGER NOT NULL DEFAULT 0,
    detail      BLOB NOT NULL           -- encrypted JSON: error, dropped counts, skipped messages
);
CREATE INDEX hotlist_refreshes_list ON hotlist_refreshes (list_name, at);

-- A hit is a read that matched a hot-list entry; its alert walks the verification tiers.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    read_id     TEXT NOT NULL REFERENCES reads (id),
    created_at  TEXT NOT NULL,
    list_name   TEXT NOT NULL,
    state       TEXT NOT NULL,
    covert      INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    payload     BLOB NOT NULL           -- encrypted JSON: entry, hit kind, differences, stale
);
CREATE INDEX alerts_created ON alerts (created_at);
CREATE INDEX alerts_read ON alerts (read_id);

CREATE TABLE alert_events (
    id          INTEGER PRIMARY KEY,
    alert_id    TEXT NOT NULL REFERENCES alerts (id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    detail      BLOB NOT NULL           -- encrypted JSON: reason, disposition, note
);
CREATE INDEX alert_events_alert ON alert_events (alert_id);

-- Locally entered plates (BOLOs): inactive until a supervisor or administrator approves them.
CREATE TABLE bolos (
    id           TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    status       TEXT NOT NULL,         -- pending | active | rejected | withdrawn
    approved_by  TEXT,
    approved_at  TEXT,
    expires_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    payload      BLOB NOT NULL          -- encrypted JSON: plate, state, case number, synopsis ...
);
CREATE INDEX bolos_status ON bolos (status, expires_at);
