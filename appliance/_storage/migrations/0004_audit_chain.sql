-- The event log becomes a hash chain (issue 6; CJIS 5.4 protection of audit information): each
-- record stores the hash of the record before it and its own hash over (id, at, kind, actor,
-- detail ciphertext, prev_hash); the signed head of the chain lives in `meta`. SQLite cannot
-- compute SHA-256, so rows written before this migration keep NULL hashes until the first event
-- recorded afterwards chains them (see appliance/_storage/audit.py).
ALTER TABLE events ADD COLUMN prev_hash BLOB;
ALTER TABLE events ADD COLUMN hash BLOB;
