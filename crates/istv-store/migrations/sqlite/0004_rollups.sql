-- Record keys for the cell key method, and their sums in the cube log.
-- Records stored before this migration keep key 0: their aggregates stay
-- exact (a sum of zeros), only their cell keys are less random.
ALTER TABLE records ADD COLUMN rkey INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cube ADD COLUMN keysum INTEGER NOT NULL DEFAULT 0;

-- Settings the store keeps for itself (the record key seed).
CREATE TABLE store_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The roll-up tables built so far, each with the definition it was built
-- from. The tables themselves are made and filled from the records when a
-- store connects (see src/rollups.rs), so that a declared roll-up a store
-- lacks is built from what it holds.
CREATE TABLE rollups_built (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
