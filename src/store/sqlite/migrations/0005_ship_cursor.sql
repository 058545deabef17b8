-- How far each sink (PostgreSQL in cluster mode) has shipped request_log: every row with
-- seq <= ship_cursor.seq is committed there. Only ever moves forward.
CREATE TABLE ship_cursor (
    sink TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
