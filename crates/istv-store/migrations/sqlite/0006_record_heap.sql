-- Records become a heap in arrival order, and a record's identity (site,
-- record id) moves to a small index of fingerprints. Keyed by (site, record
-- id), every new record with a hashed or pseudonymised id was an insert at
-- a random place in the widest table of the store, and every page a batch
-- touched was written to the WAL whole at its commit: in a store of 3M
-- records, nearly every page of the table per batch. Appended by rowid, a
-- batch's records fill a few new pages.
--
-- The identity of a record is a 64-bit keyed fingerprint of (site, record
-- id) pointing to its rowid, in two tiers: `record_ids_recent` takes the
-- fingerprints of new records (small, so a batch's random inserts land on
-- few pages) and is merged in fingerprint order into `record_ids` once it
-- holds enough (src/sqlite/identity.rs). Fingerprints may collide: a lookup
-- compares the site and record id of every record its fingerprint names.
-- The fingerprints of the records copied here are made when the store next
-- connects, since the key is a secret the store makes itself.
CREATE TABLE records_heap (
    rid INTEGER PRIMARY KEY,
    site_code TEXT NOT NULL,
    record_id TEXT NOT NULL,
    content_hash INTEGER NOT NULL,
    upload_id TEXT NOT NULL,
    day TEXT NOT NULL,
    hour INTEGER,
    assault_method TEXT NOT NULL,
    location_type TEXT NOT NULL,
    age_band TEXT NOT NULL,
    sex TEXT NOT NULL,
    geocode_method TEXT NOT NULL,
    precision_m INTEGER,
    cell INTEGER,
    borough TEXT,
    ward TEXT,
    lsoa TEXT,
    rkey INTEGER NOT NULL DEFAULT 0
);

INSERT INTO records_heap (
    site_code, record_id, content_hash, upload_id, day, hour, assault_method,
    location_type, age_band, sex, geocode_method, precision_m, cell, borough,
    ward, lsoa, rkey
)
SELECT
    site_code, record_id, content_hash, upload_id, day, hour, assault_method,
    location_type, age_band, sex, geocode_method, precision_m, cell, borough,
    ward, lsoa, rkey
FROM records;

DROP TABLE records;
ALTER TABLE records_heap RENAME TO records;

CREATE TABLE record_ids (
    fp INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (fp, rid)
) WITHOUT ROWID;

CREATE TABLE record_ids_recent (
    fp INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (fp, rid)
) WITHOUT ROWID;
