SELECT id, site_code, received_at, format, rows, accepted, rejected, duplicates,
    corrections, receipt, completed, completed_at
FROM uploads WHERE id = $1
