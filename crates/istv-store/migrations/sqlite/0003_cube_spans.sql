-- A date range finds its cube rows through spans instead of an index on
-- day. A batch appends its rows with consecutive sequence numbers and
-- records the range, with the first and last day among them, as a span (or
-- widens the latest span while it is small). An index entry per row cost
-- about as much as the row itself; a span costs one row per batch. Real
-- feeds send recent days, so a span covers a few days and a date range
-- reads few of them; a feed spread over years makes spans wide and such a
-- query a scan, as it would be without the index.
--
-- The sequence is an explicit INTEGER PRIMARY KEY, which VACUUM keeps
-- (it may renumber an implicit rowid).
CREATE TABLE cube_seq (
    seq INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    hour INTEGER NOT NULL,
    assault_method TEXT NOT NULL,
    location_type TEXT NOT NULL,
    age_band TEXT NOT NULL,
    sex TEXT NOT NULL,
    site_code TEXT NOT NULL,
    location_status TEXT NOT NULL,
    cell7 INTEGER NOT NULL,
    cell8 INTEGER NOT NULL,
    cell9 INTEGER NOT NULL,
    cell10 INTEGER NOT NULL,
    borough TEXT NOT NULL,
    ward TEXT NOT NULL,
    lsoa TEXT NOT NULL,
    count INTEGER NOT NULL
);

INSERT INTO cube_seq (
    day, hour, assault_method, location_type, age_band, sex, site_code,
    location_status, cell7, cell8, cell9, cell10, borough, ward, lsoa, count
)
SELECT
    day, hour, assault_method, location_type, age_band, sex, site_code,
    location_status, cell7, cell8, cell9, cell10, borough, ward, lsoa, count
FROM cube ORDER BY rowid;

DROP TABLE cube;
ALTER TABLE cube_seq RENAME TO cube;

-- Spans never overlap and together cover every row of the cube.
CREATE TABLE cube_spans (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL
);

INSERT INTO cube_spans (first_seq, last_seq, first_day, last_day)
SELECT MIN(seq), MAX(seq), MIN(day), MAX(day) FROM cube HAVING COUNT(*) > 0;
