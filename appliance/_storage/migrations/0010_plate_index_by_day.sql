-- Exact plate search uses an index on (day, plate_index) instead of (plate_index) (issue 5).
-- The plate index is a keyed hash, so in an index led by it a day's reads sit on random pages
-- all over the index: purging a day in small transactions rewrote most of those pages once per
-- transaction (and litestream shipped every rewrite). Led by the day, a day's entries are
-- neighbours and its purge touches only its own pages. A search probes each stored day in its
-- window (appliance/_storage/plate_days.py): one index seek per day.
DROP INDEX IF EXISTS reads_plate_index;
CREATE INDEX reads_day_plate ON reads (day, plate_index);
