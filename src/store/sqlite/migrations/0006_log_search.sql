-- Log search pages newest first by (initial_time, id) with a keyset cursor: an index on both
-- answers a page without a sort. It replaces the index on initial_time alone (same prefix, so
-- time-window reads keep using it), so the writer still maintains one time index.
CREATE INDEX request_log_time_id ON request_log (initial_time, id);
DROP INDEX IF EXISTS request_log_time;
