-- Organisations, users and their credentials. Secrets are stored hashed
-- only: passwords as argon2id PHC strings, API tokens and session ids as
-- SHA-256 of 256 random bits.
CREATE TABLE orgs (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- boroughs: NULL for all of London, else ONS codes separated by commas.
-- dimensions: NULL for every dimension, else names separated by commas.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    org_code TEXT NOT NULL REFERENCES orgs (code),
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    boroughs TEXT,
    max_resolution BIGINT NOT NULL,
    finest_area TEXT NOT NULL,
    dimensions TEXT,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- The ED sites an uploader uploads for.
CREATE TABLE user_sites (
    user_name TEXT NOT NULL REFERENCES users (name),
    site_code TEXT NOT NULL REFERENCES sites (code),
    PRIMARY KEY (user_name, site_code)
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked BIGINT NOT NULL DEFAULT 0,
    last_used_at TEXT
);

-- A name is unique among a user's tokens that are not revoked, so a
-- revoked token's name can be given again.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (user_name, name) WHERE revoked = 0;

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    csrf_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idle_expires_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_name);
