-- Usage roll-ups for the statistics API, written by the log writer in the same transaction as
-- the rows they count (usage_daily stays as it was: budgets and imports use it). One row per
-- (period, key, model, channel, endpoint, HTTP status): usage_hourly by UTC hour
-- ('YYYY-MM-DDTHH'), usage_daily_detail by UTC day ('YYYY-MM-DD'), so a long range reads days
-- and only its partial edge days from the hourly table. cost_nanos is an exact integer sum of
-- each row's cost rounded to nano-dollars. latency / ttft are histograms: requests per latency
-- and time-to-first-token bucket (fixed log-spaced bounds in rollup.rs), encoded as in
-- histogram.rs (sparse (bucket, count) pairs). The writer merges them with the SQL function
-- hist_add registered on its connection; reads sum them in Rust, so SQLite never sums 68
-- columns per row.
-- The existing rows are back-filled right after this file runs, in the same transaction.
-- By UTC hour.
CREATE TABLE usage_hourly (
    period                TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    model                 TEXT NOT NULL,
    channel_id            TEXT NOT NULL,
    endpoint              TEXT NOT NULL,
    http_status           INTEGER NOT NULL,
    requests              INTEGER NOT NULL DEFAULT 0,
    errors                INTEGER NOT NULL DEFAULT 0,
    input_tokens          INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
    total_tokens          INTEGER NOT NULL DEFAULT 0,
    cost_nanos            INTEGER NOT NULL DEFAULT 0,
    latency               BLOB NOT NULL DEFAULT x'',
    ttft                  BLOB NOT NULL DEFAULT x'',
    PRIMARY KEY (period, key_id, model, channel_id, endpoint, http_status)
) WITHOUT ROWID;

-- By UTC day: the same figures, about 24 times fewer rows.
CREATE TABLE usage_daily_detail (
    period                TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    model                 TEXT NOT NULL,
    channel_id            TEXT NOT NULL,
    endpoint              TEXT NOT NULL,
    http_status           INTEGER NOT NULL,
    requests              INTEGER NOT NULL DEFAULT 0,
    errors                INTEGER NOT NULL DEFAULT 0,
    input_tokens          INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
    total_tokens          INTEGER NOT NULL DEFAULT 0,
    cost_nanos            INTEGER NOT NULL DEFAULT 0,
    latency               BLOB NOT NULL DEFAULT x'',
    ttft                  BLOB NOT NULL DEFAULT x'',
    PRIMARY KEY (period, key_id, model, channel_id, endpoint, http_status)
) WITHOUT ROWID;

-- A counter per UTC day, raised by every write that adds to that day's roll-ups (in the same
-- transaction): a reader that reads it in the snapshot it sums from knows whether figures it
-- computed earlier for that day still hold (the in-memory cache of completed days).
CREATE TABLE usage_day_generation (
    day        TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
) WITHOUT ROWID;
