-- Sites that may upload, and hashes of their tokens (never the tokens).
CREATE TABLE sites (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE site_tokens (
    token_hash TEXT PRIMARY KEY,
    site_code TEXT NOT NULL REFERENCES sites (code),
    created_at TEXT NOT NULL
);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    site_code TEXT NOT NULL,
    received_at TEXT NOT NULL,
    format TEXT NOT NULL,
    rows BIGINT NOT NULL DEFAULT 0,
    accepted BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    corrections BIGINT NOT NULL DEFAULT 0,
    receipt TEXT,
    completed BIGINT NOT NULL DEFAULT 0,
    completed_at TEXT
);

CREATE INDEX uploads_site_completed ON uploads (site_code, completed, completed_at);

CREATE TABLE upload_errors (
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    seq BIGINT NOT NULL,
    row_number BIGINT NOT NULL,
    field TEXT,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (upload_id, seq)
);

-- One row per accepted record: derived fields only.
CREATE TABLE records (
    site_code TEXT NOT NULL,
    record_id TEXT NOT NULL,
    content_hash BIGINT NOT NULL,
    upload_id TEXT NOT NULL,
    day TEXT NOT NULL,
    hour BIGINT,
    assault_method TEXT NOT NULL,
    location_type TEXT NOT NULL,
    age_band TEXT NOT NULL,
    sex TEXT NOT NULL,
    geocode_method TEXT NOT NULL,
    precision_m BIGINT,
    cell BIGINT,
    borough TEXT,
    ward TEXT,
    lsoa TEXT,
    PRIMARY KEY (site_code, record_id)
);

-- Counts per finest-grain key. Unknowns are sentinels ('' / -1 / 0), not
-- NULL, so the primary key makes each key unique.
CREATE TABLE cube (
    day TEXT NOT NULL,
    hour BIGINT NOT NULL,
    assault_method TEXT NOT NULL,
    location_type TEXT NOT NULL,
    age_band TEXT NOT NULL,
    sex TEXT NOT NULL,
    site_code TEXT NOT NULL,
    location_status TEXT NOT NULL,
    cell7 BIGINT NOT NULL,
    cell8 BIGINT NOT NULL,
    cell9 BIGINT NOT NULL,
    cell10 BIGINT NOT NULL,
    borough TEXT NOT NULL,
    ward TEXT NOT NULL,
    lsoa TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (
        day, hour, assault_method, location_type, age_band, sex, site_code,
        location_status, cell7, cell8, cell9, cell10, borough, ward, lsoa
    )
);

-- Finds the keys a correction emptied, without a scan.
CREATE INDEX cube_zero ON cube (day) WHERE count = 0;
