-- The audit log: who asked for what, when, and how many figures they got.
-- Append-only and hash-chained: hash = SHA-256 of the previous entry's hash
-- and this entry's fields (see the store's `audit` module for the encoding).
-- seq is given by the writer (the last seq + 1, under the write lock), so a
-- deleted entry leaves a gap. Never a password, a token or record content.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    organisation TEXT,
    action TEXT NOT NULL,
    route TEXT,
    parameters TEXT,
    figures INTEGER,
    status TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- Changing or deleting an entry takes dropping these first: not a defence
-- against the database's owner (the chain detects that), but no mistake of
-- the application's can rewrite the log.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
