INSERT INTO cube_spans (first_seq, last_seq, first_day, last_day)
VALUES (?1, ?2, ?3, ?4)
