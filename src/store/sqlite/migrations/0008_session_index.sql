-- A log search by session finds its rows at once however old they are (without it, the time
-- index is walked from now back to the session). Partial: rows without a session, which
-- never match a session search, add nothing to it and cost the writer nothing.
CREATE INDEX request_log_session ON request_log (session_id, initial_time, id) WHERE session_id <> '';
