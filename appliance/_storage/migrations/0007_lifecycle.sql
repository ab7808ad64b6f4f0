-- Data lifecycle (issue 5): retention classes, day-keyed encryption, images in segment files,
-- legal holds and purge proofs. Only what purging and ordering need is in clear.

-- A read is 'read' (non-hit) until it matches a hot list, then 'hit' (re-encrypted under the
-- hit key of its day). key_id names the data key its payload is encrypted under.
ALTER TABLE reads ADD COLUMN class TEXT NOT NULL DEFAULT 'read';
ALTER TABLE reads ADD COLUMN key_id INTEGER;
CREATE INDEX reads_class_day ON reads (class, day);

-- Crops and vehicle images: encrypted bytes in segment files, located here.
CREATE TABLE images (
    read_id  TEXT NOT NULL,
    kind     TEXT NOT NULL,          -- crop | vehicle
    class    TEXT NOT NULL,          -- image (non-hit) | hit | hold
    day      TEXT NOT NULL,
    segment  TEXT NOT NULL,
    offset   INTEGER NOT NULL,
    length   INTEGER NOT NULL,
    key_id   INTEGER NOT NULL,
    PRIMARY KEY (read_id, kind)
);
CREATE INDEX images_class_day ON images (class, day);

-- The segment files and their state; closed segments are the replication outbox.
CREATE TABLE segments (
    name        TEXT PRIMARY KEY,
    class       TEXT NOT NULL,
    day         TEXT NOT NULL,
    state       TEXT NOT NULL,        -- open | closed | deleted
    size        INTEGER,
    sha256      TEXT,
    created_at  TEXT NOT NULL,
    closed_at   TEXT,
    shipped_at  TEXT,
    deleted_at  TEXT
);
CREATE INDEX segments_state ON segments (state, closed_at);

-- Legal holds: a case keeps chosen reads (with their images) from being purged.
CREATE TABLE holds (
    id           INTEGER PRIMARY KEY,
    case_number  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    until        TEXT,
    released_at  TEXT,
    released_by  TEXT,
    detail       BLOB NOT NULL        -- encrypted JSON: reason, how the reads were chosen
);
CREATE TABLE hold_items (
    hold_id  INTEGER NOT NULL REFERENCES holds (id),
    read_id  TEXT NOT NULL,
    PRIMARY KEY (hold_id, read_id)
);
CREATE INDEX hold_items_read ON hold_items (read_id);

-- Purge proofs: what class and day were destroyed, when, under which policy; signed.
CREATE TABLE purges (
    id              INTEGER PRIMARY KEY,
    class           TEXT NOT NULL,
    day             TEXT NOT NULL,
    at              TEXT NOT NULL,
    rows            INTEGER NOT NULL,
    images          INTEGER NOT NULL,
    held            INTEGER NOT NULL,
    key_destroyed   INTEGER NOT NULL,
    policy_version  TEXT NOT NULL,
    proof           TEXT NOT NULL,    -- canonical JSON of the above
    signature       BLOB NOT NULL     -- Ed25519 over proof, by the audit signing key
);
CREATE INDEX purges_class_day ON purges (class, day)
