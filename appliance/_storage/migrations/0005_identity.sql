-- Identity (issue "Identity"): TOTP MFA, recovery codes, forced password change and training.
-- mfa_secret is AES-GCM ciphertext (associated data binds it to the user id), never the secret
-- in clear. mfa_last_step is the last TOTP time step accepted, so a code is never accepted twice.
ALTER TABLE users ADD COLUMN mfa_secret BLOB;
ALTER TABLE users ADD COLUMN mfa_last_step INTEGER;
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;

-- One-time recovery codes, kept only as SHA-256 hashes of the normalized code.
CREATE TABLE mfa_recovery_codes (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   TEXT
);
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes (user_id);

-- Training records (Piedmont 438.7, Oakland 430.9): no data access without current training.
CREATE TABLE training_records (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course       TEXT NOT NULL,
    completed_on TEXT NOT NULL,
    expires_on   TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX training_records_user ON training_records (user_id);
