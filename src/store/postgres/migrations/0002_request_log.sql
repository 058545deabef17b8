-- Request logs shipped by every instance from its local logs.sqlite (at least once; a resent
-- row is absorbed by the primary key). One partition per calendar month (UTC), created ahead
-- by the instances (ensure_log_partitions) and for the month of any row being shipped; there is
-- no default partition, so a month can always be added, detached or dropped on its own.
CREATE TABLE request_log (
    -- The local row's id: unique across instances (UUIDv7, or the id an import carried).
    id                          text             NOT NULL,
    -- The local initial_time; a row's partition key, never changed.
    initial_time                timestamptz      NOT NULL,
    instance_id                 text             NOT NULL,
    -- The row's seq in its instance's logs.sqlite (what the shipping cursor counts).
    instance_seq                bigint           NOT NULL,
    status                      text             NOT NULL,
    first_token_time            timestamptz,
    complete_time               timestamptz,
    duration_ms                 bigint           NOT NULL DEFAULT 0,
    provider                    text             NOT NULL DEFAULT '',
    provider_name               text             NOT NULL DEFAULT '',
    model                       text             NOT NULL DEFAULT '',
    response_model              text             NOT NULL DEFAULT '',
    input_tokens                bigint           NOT NULL DEFAULT 0,
    output_tokens               bigint           NOT NULL DEFAULT 0,
    cache_creation_input_tokens bigint           NOT NULL DEFAULT 0,
    cache_read_input_tokens     bigint           NOT NULL DEFAULT 0,
    total_tokens                bigint           NOT NULL DEFAULT 0,
    price                       double precision NOT NULL DEFAULT 0,
    input_cost                  double precision NOT NULL DEFAULT 0,
    output_cost                 double precision NOT NULL DEFAULT 0,
    cache_creation_cost         double precision NOT NULL DEFAULT 0,
    cache_read_cost             double precision NOT NULL DEFAULT 0,
    http_status                 integer          NOT NULL DEFAULT 0,
    stream                      boolean          NOT NULL DEFAULT false,
    channel_id                  text             NOT NULL DEFAULT '',
    channel_name                text             NOT NULL DEFAULT '',
    endpoint                    text             NOT NULL DEFAULT '',
    client_id                   text             NOT NULL DEFAULT '',
    session_id                  text             NOT NULL DEFAULT '',
    error                       text             NOT NULL DEFAULT '',
    upstream_error              text             NOT NULL DEFAULT '',
    failover_info               text             NOT NULL DEFAULT '',
    unpriced                    boolean          NOT NULL DEFAULT false,
    shipped_at                  timestamptz      NOT NULL DEFAULT now(),
    -- The partition key must be part of the key; (id, initial_time) is what ON CONFLICT uses.
    PRIMARY KEY (id, initial_time)
) PARTITION BY RANGE (initial_time);
