-- The schema registry of `istv registry` (Confluent's REST API): Avro
-- schemas by global id, each subject's versions, and compatibility levels.
-- A schema is stored once (by the SHA-256 of its normalised text) and keeps
-- its id across subjects; ids and versions count from 1 and are given by
-- the writer (the last + 1, under the write lock).
CREATE TABLE registry_schemas (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    schema TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE registry_versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES registry_schemas (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (subject, version),
    UNIQUE (subject, schema_id)
);

-- subject '' holds the global level.
CREATE TABLE registry_config (
    subject TEXT PRIMARY KEY,
    compatibility TEXT NOT NULL
);
