-- The public tier: one release per month (borough x assault method counts
-- with differential privacy noise), computed once and served as stored.
-- rows_json and rows_csv are the answers, byte for byte; the other columns
-- describe the release. A month is never recomputed: a second computation
-- would be a second draw of noise, so rows are neither changed nor deleted.
CREATE TABLE public_releases (
    month TEXT PRIMARY KEY,
    epsilon REAL NOT NULL,
    mechanism TEXT NOT NULL,
    parameters TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rows_json TEXT NOT NULL,
    rows_csv TEXT NOT NULL
);

CREATE TRIGGER public_releases_no_update BEFORE UPDATE ON public_releases
BEGIN
    SELECT RAISE(ABORT, 'public releases are never recomputed');
END;

CREATE TRIGGER public_releases_no_delete BEFORE DELETE ON public_releases
BEGIN
    SELECT RAISE(ABORT, 'public releases are never recomputed');
END;
