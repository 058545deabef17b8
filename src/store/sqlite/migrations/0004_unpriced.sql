-- Whether a request used tokens of a model with no price anywhere (configured or built-in), so
-- its cost of 0 is "unknown", not "free". Old rows read as priced.
ALTER TABLE request_log ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
