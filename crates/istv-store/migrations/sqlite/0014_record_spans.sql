-- The cube log goes: it held a row per record (and two per correction),
-- the same facts as the records table, so about a third of the store, and
-- an insert per record on every batch. The roll-up tables answer the
-- routed queries; any other query now counts the records table itself,
-- whose rows hold the current version of each record (corrections update
-- them in place), so a count is a COUNT(*) and needs no log of changes.
--
-- A date range finds its records through spans, as it found cube rows:
-- each batch appends its new records with consecutive rowids and records
-- the range, with the first and last day among them, as a span (or widens
-- the latest span while it is small); a correction that moves a record to
-- another day widens the span that holds it. Spans never overlap and
-- together cover every record.
CREATE TABLE record_spans (
    first_rid INTEGER PRIMARY KEY,
    last_rid INTEGER NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL
);

INSERT INTO record_spans (first_rid, last_rid, first_day, last_day)
SELECT MIN(rid), MAX(rid), MIN(day), MAX(day) FROM records GROUP BY (rid - 1) / 10000;

DROP TABLE cube_spans;
DROP TABLE cube;
