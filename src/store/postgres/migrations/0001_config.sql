-- The shared configuration of a relaybox cluster.

-- One row: the cluster's identity and its config revision. Every config write locks this row
-- first (SELECT ... FOR UPDATE), so writers are serialised and revision order is commit order.
CREATE TABLE cfg_head (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    -- New for every database relaybox sets up: an instance whose local copy names another
    -- cluster resyncs (or refuses), and a restore into a new database is noticed.
    cluster_id uuid        NOT NULL DEFAULT gen_random_uuid(),
    rev        bigint      NOT NULL DEFAULT 0,
    -- Tombstones below this revision may have been removed: a copy older than it resyncs.
    min_rev    bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cfg_head DEFAULT VALUES;

-- One row per record: kind is key, channel, credentials (a channel's secrets, by channel id),
-- price (by model), aliases or settings. A delete leaves a tombstone (deleted, no body,
-- version 0) so pullers learn about it; rev is the revision that wrote the row last.
CREATE TABLE cfg_record (
    kind       text        NOT NULL,
    id         text        NOT NULL,
    version    bigint      NOT NULL,
    rev        bigint      NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    body       jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id),
    CHECK (deleted = (body IS NULL))
);
CREATE INDEX cfg_record_rev ON cfg_record (rev);
-- A client key's hash is unique among live keys (the writer checks first; this is the backstop).
CREATE UNIQUE INDEX cfg_record_key_hash ON cfg_record ((body ->> 'hash'))
    WHERE kind = 'key' AND NOT deleted;

-- The cluster's keyring: every instance opens the same sealed secrets with it.
CREATE TABLE cfg_keyring (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    body       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
