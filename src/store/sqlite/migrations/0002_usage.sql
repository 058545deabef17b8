-- Usage roll-ups, updated in the same transaction as the log rows they count, so budgets and
-- logs never disagree after a crash.
CREATE TABLE usage_daily (
    key_id                TEXT NOT NULL,
    model                 TEXT NOT NULL,
    day                   TEXT NOT NULL,
    requests              INTEGER NOT NULL DEFAULT 0,
    input_tokens          INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
    cost                  REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, model, day)
);

-- Per-channel quota counters (cc-bridge quota_usage.json / channel_usage).
CREATE TABLE channel_quota_usage (
    channel_id    TEXT PRIMARY KEY,
    used          REAL NOT NULL DEFAULT 0,
    last_reset_at TEXT NOT NULL DEFAULT ''
);
