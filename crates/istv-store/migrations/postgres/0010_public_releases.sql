-- The public tier: one release per month (borough x assault method counts
-- with differential privacy noise), computed once and served as stored.
-- rows_json and rows_csv are the answers, byte for byte; the other columns
-- describe the release. A month is never recomputed: a second computation
-- would be a second draw of noise, so rows are neither changed nor deleted.
CREATE TABLE public_releases (
    month TEXT PRIMARY KEY,
    epsilon DOUBLE PRECISION NOT NULL,
    mechanism TEXT NOT NULL,
    parameters TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rows_json TEXT NOT NULL,
    rows_csv TEXT NOT NULL
);

CREATE FUNCTION public_releases_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'public releases are never recomputed';
END
$$;

CREATE TRIGGER public_releases_no_change BEFORE UPDATE OR DELETE ON public_releases
    FOR EACH ROW EXECUTE FUNCTION public_releases_fixed();

CREATE TRIGGER public_releases_no_truncate BEFORE TRUNCATE ON public_releases
    FOR EACH STATEMENT EXECUTE FUNCTION public_releases_fixed();
