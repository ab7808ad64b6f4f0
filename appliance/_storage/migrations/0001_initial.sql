-- Reads: only what ordering and purging need is in clear (time, camera, day); the plate and
-- everything else about the read is AES-GCM ciphertext in `payload`; plates are found through the
-- keyed hash `plate_index`.
CREATE TABLE reads (
    id          TEXT PRIMARY KEY,
    camera      TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    day         TEXT NOT NULL,
    plate_index BLOB NOT NULL,
    payload     BLOB NOT NULL
);
CREATE INDEX reads_seen_at ON reads (seen_at);
CREATE INDEX reads_plate_index ON reads (plate_index);

-- Crops apart from reads so listing reads never pages image bytes in (issue 5 moves them to
-- encrypted segment files beside the database).
CREATE TABLE crops (
    read_id TEXT PRIMARY KEY REFERENCES reads (id) ON DELETE CASCADE,
    data    BLOB NOT NULL
);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    organization    TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT
);

-- Who did what and when; issue 6 turns this into a hash-chained audit trail.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    detail  BLOB NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
