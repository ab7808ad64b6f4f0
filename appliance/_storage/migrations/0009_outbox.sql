-- The exporter outbox (issue 7): data leaves the box only through the policy gate, which queues
-- a delivery here for one exporter; a worker per exporter delivers it with retries and backoff.
-- The id is the delivery's idempotency key. Only what is needed to schedule and report stays
-- clear (exporter, approval id, channel, status, times, attempt count); the payload (recipient,
-- purpose, case number, records, images) and the last error are AES-GCM ciphertext.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    exporter        TEXT NOT NULL,
    approval_id     TEXT NOT NULL,
    channel         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    status          TEXT NOT NULL,          -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    finished_at     TEXT,
    payload         BLOB NOT NULL,          -- encrypted JSON: the Delivery without its id
    last_error      BLOB                    -- encrypted text of the last failure
);
CREATE INDEX outbox_due ON outbox (exporter, status, next_attempt_at);
CREATE INDEX outbox_status ON outbox (status, exporter)
