-- What the portal keeps: saved queries, each site's expected upload
-- interval, and the data-quality tallies of each site.

-- A site is late when its last upload is older than this many days.
ALTER TABLE sites ADD COLUMN expected_interval_days BIGINT NOT NULL DEFAULT 35;

-- A portal view saved by a user: the page's query string. Shared ones are
-- listed to every user of the owner's organisation (as it was when saved).
CREATE TABLE saved_queries (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL REFERENCES users (name),
    org_code TEXT NOT NULL REFERENCES orgs (code),
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    shared BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE INDEX saved_queries_owner ON saved_queries (owner, created_at);
CREATE INDEX saved_queries_org ON saved_queries (org_code, shared, created_at);

-- Counts per site, kept by each batch (records) and by each upload's row
-- errors in the transaction that stores them:
--   kind 'method':    stored records by geocoding method (name: the method);
--   kind 'field':     stored records with a value in an optional field
--                     (name: assault_time, age_band, sex);
--   kind 'rejection': row errors of the site's uploads (name: the code).
CREATE TABLE quality_tallies (
    site_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (site_code, kind, name)
);

INSERT INTO quality_tallies (site_code, kind, name, count)
SELECT site_code, 'method', geocode_method, COUNT(*) FROM records
GROUP BY site_code, geocode_method;

INSERT INTO quality_tallies (site_code, kind, name, count)
SELECT site_code, 'field', 'assault_time', COUNT(*) FROM records
WHERE hour IS NOT NULL GROUP BY site_code;

INSERT INTO quality_tallies (site_code, kind, name, count)
SELECT site_code, 'field', 'age_band', COUNT(*) FROM records
WHERE age_band <> 'unknown' GROUP BY site_code;

INSERT INTO quality_tallies (site_code, kind, name, count)
SELECT site_code, 'field', 'sex', COUNT(*) FROM records
WHERE sex <> 'not_known' GROUP BY site_code;

INSERT INTO quality_tallies (site_code, kind, name, count)
SELECT u.site_code, 'rejection', e.code, COUNT(*)
FROM upload_errors e JOIN uploads u ON u.id = e.upload_id
GROUP BY u.site_code, e.code;
