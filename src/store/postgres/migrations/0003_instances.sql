-- The instances of a relaybox cluster, and the leases its singleton jobs run under.
-- Every time here is PostgreSQL's now(): instance clocks may be skewed.

-- One row per instance, upserted by its heartbeat every few seconds. Live = seen in the last
-- 15 s and not stopped; a row not seen for a day is removed by a singleton job.
CREATE TABLE instances (
    instance_id             text        PRIMARY KEY,
    hostname                text        NOT NULL,
    version                 text        NOT NULL,
    -- The address it serves on (as it reports it; informational).
    listen                  text        NOT NULL DEFAULT '',
    -- The first heartbeat of its current process.
    started_at              timestamptz NOT NULL DEFAULT now(),
    last_seen               timestamptz NOT NULL DEFAULT now(),
    -- Set by a clean stop; the next heartbeat clears it.
    stopped_at              timestamptz,
    -- The config revision its local copy has applied.
    applied_rev             bigint      NOT NULL DEFAULT 0,
    -- Request-log rows written locally but not yet shipped, and the age of the oldest.
    log_backlog_rows        bigint      NOT NULL DEFAULT 0,
    log_backlog_age_seconds bigint      NOT NULL DEFAULT 0,
    -- Its clock minus PostgreSQL's now(), measured around a heartbeat's round trip (null until
    -- measured).
    clock_skew_ms           bigint,
    -- Since when its config copy could not be refreshed (null: fresh).
    config_stale_since      timestamptz
);
CREATE INDEX instances_last_seen ON instances (last_seen);

-- One row per singleton job: who runs it, until when, and the fencing epoch. A new holder
-- bumps the epoch; a holder's writes check it (with this row locked) and are refused once
-- another holder took over. Never a session advisory lock: it is lost with a connection and
-- breaks behind a transaction-mode pooler.
CREATE TABLE leases (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    epoch       bigint      NOT NULL,
    expires_at  timestamptz NOT NULL,
    -- When the current holder took it (renewals keep it).
    acquired_at timestamptz NOT NULL DEFAULT now()
);
