-- cc-bridge config files applied in this cluster, by content: a file one instance applied is
-- not applied again by another (which could undo admin changes made since).
CREATE TABLE cfg_import (
    file        text        NOT NULL,
    sha256      text        NOT NULL,
    instance_id text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file, sha256)
);
