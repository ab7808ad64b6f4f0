-- The vehicle around the plate, for comparing make, model and colour with a hot-list entry.
ALTER TABLE crops ADD COLUMN vehicle BLOB;
