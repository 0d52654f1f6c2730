UPDATE uploads
SET rows = $1, rejected = $2, receipt = $3, completed = 1, completed_at = $4
WHERE id = $5
