-- Budgets and quotas shared across instances. Each instance upserts its OWN rows with ABSOLUTE
-- totals (a grow-only counter per instance): writes are idempotent and no two instances ever
-- write the same row, so publishing never contends or deadlocks. The cluster's usage of a
-- bucket is the sum over instances.
CREATE TABLE usage_counter (
    -- What the bucket counts: key_minute (a key's rolling windows), key_day (a key's cost per
    -- UTC day), key_total (a key's total cost), channel_period (a channel's fixed quota period),
    -- channel_minute (a channel's rolling quota).
    scope       text        NOT NULL,
    -- The key id or channel id.
    subject     text        NOT NULL,
    -- Unix minute (minute scopes), unix day (key_day), period start in unix seconds
    -- (channel_period), 0 (key_total).
    bucket      bigint      NOT NULL,
    instance_id text        NOT NULL,
    requests    bigint      NOT NULL DEFAULT 0,
    tokens      bigint      NOT NULL DEFAULT 0,
    cost_micros bigint      NOT NULL DEFAULT 0,
    -- Unix seconds when the bucket ends; NULL when it never does (totals, open-ended periods).
    ends_at     bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject, bucket, instance_id)
);
-- Pruning deletes by end.
CREATE INDEX usage_counter_ends_at ON usage_counter (ends_at);
