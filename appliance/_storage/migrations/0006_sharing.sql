-- Sharing requests and standing approvals (issue 7; Vallejo 426.8, Emeryville 429.7,
-- Oakland 430.8): a written request reviewed and approved by the chief's designee, kept on file.
-- payload is AES-GCM ciphertext (associated data binds it to the row's id and creation time):
-- the requesting agency, ORI, person, purpose, case number, on-behalf-of chain, scope, channels
-- and the reviewer's note. Status, people and dates stay clear so expiry and listing need no key.
CREATE TABLE sharing_requests (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('request', 'standing')),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked')),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    decided_by  TEXT,
    decided_at  TEXT,
    expires_at  TEXT,
    updated_at  TEXT NOT NULL,
    payload     BLOB NOT NULL
);
CREATE INDEX sharing_requests_status ON sharing_requests (status, expires_at);
CREATE INDEX sharing_requests_created ON sharing_requests (created_at);
