-- Request logs: one row per relayed request (SPEC §3), plus import bookkeeping.
CREATE TABLE request_log (
    seq                         INTEGER PRIMARY KEY,
    id                          TEXT NOT NULL UNIQUE,
    status                      TEXT NOT NULL,
    initial_time                TEXT NOT NULL,
    first_token_time            TEXT,
    complete_time               TEXT,
    duration_ms                 INTEGER NOT NULL DEFAULT 0,
    provider                    TEXT NOT NULL DEFAULT '',
    provider_name               TEXT NOT NULL DEFAULT '',
    model                       TEXT NOT NULL DEFAULT '',
    response_model              TEXT NOT NULL DEFAULT '',
    input_tokens                INTEGER NOT NULL DEFAULT 0,
    output_tokens               INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    total_tokens                INTEGER NOT NULL DEFAULT 0,
    price                       REAL NOT NULL DEFAULT 0,
    input_cost                  REAL NOT NULL DEFAULT 0,
    output_cost                 REAL NOT NULL DEFAULT 0,
    cache_creation_cost         REAL NOT NULL DEFAULT 0,
    cache_read_cost             REAL NOT NULL DEFAULT 0,
    http_status                 INTEGER NOT NULL DEFAULT 0,
    stream                      INTEGER NOT NULL DEFAULT 0,
    channel_id                  TEXT NOT NULL DEFAULT '',
    channel_name                TEXT NOT NULL DEFAULT '',
    endpoint                    TEXT NOT NULL DEFAULT '',
    client_id                   TEXT NOT NULL DEFAULT '',
    session_id                  TEXT NOT NULL DEFAULT '',
    error                       TEXT NOT NULL DEFAULT '',
    upstream_error              TEXT NOT NULL DEFAULT '',
    failover_info               TEXT NOT NULL DEFAULT ''
);
CREATE INDEX request_log_time ON request_log (initial_time);
CREATE INDEX request_log_client_time ON request_log (client_id, initial_time);

-- What was imported from where, so a file or a source record is applied once.
CREATE TABLE import_history (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,
    item       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX import_history_item ON import_history (source, item, id);

-- cc-bridge's per-user display aliases, kept as they are.
CREATE TABLE user_aliases (
    user_id    TEXT PRIMARY KEY,
    alias      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT ''
);
