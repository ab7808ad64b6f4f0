-- Exact plate search through a table led by the day (issue 5, purge vs ingest). The index on
-- reads (plate_index) kept every day's entries spread over all of it, in hash order: a purge
-- batch of 100 reads rewrote ~100 of its pages, and the next batch most of them again, so the
-- plate index was most of what a purge wrote to the WAL (and litestream shipped). Here a day's
-- entries sit together, and the purge deletes them in their own order (_lifecycle/retention.py).
-- Search looks the plate up in each stored day (_storage/plate_keys.py). reads.plate_index is
-- still written, so nothing that reads it breaks; it is no longer indexed.
CREATE TABLE plate_keys (
    day         TEXT NOT NULL,
    plate_index BLOB NOT NULL,
    read_id     TEXT NOT NULL,
    PRIMARY KEY (day, plate_index, read_id)
) WITHOUT ROWID;
INSERT INTO plate_keys (day, plate_index, read_id) SELECT day, plate_index, id FROM reads;
DROP INDEX reads_plate_index
