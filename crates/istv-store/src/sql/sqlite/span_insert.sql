INSERT INTO record_spans (first_rid, last_rid, first_day, last_day)
VALUES (?1, ?2, ?3, ?4)
