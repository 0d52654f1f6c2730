-- The cube log goes: it held a row per record (and two per correction),
-- the same facts as the records table, and an insert per record on every
-- batch. The roll-up tables answer the routed queries; any other query
-- now counts the records table itself, whose rows hold the current version
-- of each record, and finds a date range through this index.
CREATE INDEX records_day ON records (day);

DROP TABLE cube;
