-- Records keep their facts as numbers: the day as days since 1970-01-01,
-- the assault method, location type, age band, sex and geocoding method as
-- their codes (their place in the enumeration's ALL, as the roll-up tables
-- already store them), and the upload or stream that last wrote a record
-- as an id in record_stamps instead of its 26-character id. The text
-- columns took about half of a records row. A value outside the lists
-- (none is written) leaves a NULL that the NOT NULL constraint refuses,
-- so the migration fails rather than guess.
CREATE TABLE record_stamps (
    id INTEGER PRIMARY KEY,
    stamp TEXT NOT NULL UNIQUE
);

INSERT INTO record_stamps (stamp) SELECT DISTINCT upload_id FROM records ORDER BY upload_id;

CREATE TABLE records_coded (
    rid INTEGER PRIMARY KEY,
    site_code TEXT NOT NULL,
    record_id TEXT NOT NULL,
    content_hash INTEGER NOT NULL,
    stamp INTEGER NOT NULL,
    day INTEGER NOT NULL,
    hour INTEGER,
    assault_method INTEGER NOT NULL,
    location_type INTEGER NOT NULL,
    age_band INTEGER NOT NULL,
    sex INTEGER NOT NULL,
    geocode_method INTEGER NOT NULL,
    precision_m INTEGER,
    cell INTEGER,
    borough TEXT,
    ward TEXT,
    lsoa TEXT,
    rkey INTEGER NOT NULL DEFAULT 0,
    hash_kind INTEGER NOT NULL DEFAULT 0
);

INSERT INTO records_coded (
    rid, site_code, record_id, content_hash, stamp, day, hour, assault_method,
    location_type, age_band, sex, geocode_method, precision_m, cell, borough,
    ward, lsoa, rkey, hash_kind
)
SELECT
    rid, site_code, record_id, content_hash,
    (SELECT id FROM record_stamps WHERE record_stamps.stamp = records.upload_id),
    CAST(julianday(day) - 2440587.5 AS INTEGER),
    hour,
    CASE assault_method WHEN 'body_part' THEN 0 WHEN 'blunt_object' THEN 1 WHEN 'sharp_object' THEN 2 WHEN 'firearm' THEN 3 WHEN 'other' THEN 4 WHEN 'not_known' THEN 5 END,
    CASE location_type WHEN 'street' THEN 0 WHEN 'licensed_premises' THEN 1 WHEN 'home' THEN 2 WHEN 'workplace' THEN 3 WHEN 'education' THEN 4 WHEN 'public_transport' THEN 5 WHEN 'other' THEN 6 WHEN 'not_known' THEN 7 END,
    CASE age_band WHEN '0-9' THEN 0 WHEN '10-17' THEN 1 WHEN '18-24' THEN 2 WHEN '25-34' THEN 3 WHEN '35-44' THEN 4 WHEN '45-54' THEN 5 WHEN '55-64' THEN 6 WHEN '65+' THEN 7 WHEN 'unknown' THEN 8 END,
    CASE sex WHEN 'female' THEN 0 WHEN 'male' THEN 1 WHEN 'other' THEN 2 WHEN 'not_known' THEN 3 END,
    CASE geocode_method WHEN 'latlon' THEN 0 WHEN 'grid' THEN 1 WHEN 'postcode_unit' THEN 2 WHEN 'postcode_sector' THEN 3 WHEN 'postcode_district' THEN 4 WHEN 'text_postcode' THEN 5 WHEN 'gazetteer' THEN 6 WHEN 'out_of_area' THEN 7 WHEN 'unresolved' THEN 8 END,
    precision_m, cell, borough, ward, lsoa, rkey, hash_kind
FROM records ORDER BY rid;

DROP TABLE records;
ALTER TABLE records_coded RENAME TO records;

-- The spans' days become day numbers too (a new table: the old columns'
-- TEXT affinity would turn the numbers back into text).
CREATE TABLE record_spans_coded (
    first_rid INTEGER PRIMARY KEY,
    last_rid INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day INTEGER NOT NULL
);

INSERT INTO record_spans_coded (first_rid, last_rid, first_day, last_day)
SELECT
    first_rid, last_rid,
    CAST(julianday(first_day) - 2440587.5 AS INTEGER),
    CAST(julianday(last_day) - 2440587.5 AS INTEGER)
FROM record_spans;

DROP TABLE record_spans;
ALTER TABLE record_spans_coded RENAME TO record_spans;
