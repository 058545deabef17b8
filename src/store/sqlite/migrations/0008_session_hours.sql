-- The hours each session has rows in (UTC, 'YYYY-MM-DDTHH', the first 13 characters of
-- initial_time, as the roll-ups), written by the log writer in the same transaction as the
-- rows: a log search by session reads only those hours, however old they are. One row per
-- session and hour, not per request: an index on request_log.session_id halved the writer's
-- rows/s. Filled from the rows already logged.
CREATE TABLE session_hours (
    session_id TEXT NOT NULL,
    period     TEXT NOT NULL,
    PRIMARY KEY (session_id, period)
) WITHOUT ROWID;
INSERT OR IGNORE INTO session_hours (session_id, period)
    SELECT session_id, substr(initial_time, 1, 13) FROM request_log WHERE session_id <> '';
