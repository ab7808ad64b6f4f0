-- Accounts (issue 6, C-10): administrators disable an account instead of deleting it, so a
-- username is never reused and its history stays attributable. API keys are bound to one user:
-- only a SHA-256 of the key's secret is kept; the key acts with its user's current role,
-- organization, training and enabled state, checked at every call.
ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE users ADD COLUMN disabled_by TEXT;

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    key_id       TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    revoked_by   TEXT,
    last_used_at TEXT
);
CREATE INDEX api_keys_user ON api_keys (user_id);
