INSERT INTO audit_log (seq, at, actor, organisation, action, route, parameters, figures, status, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
