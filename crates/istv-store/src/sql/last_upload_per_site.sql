SELECT site_code, MAX(completed_at) FROM uploads WHERE completed = 1
GROUP BY site_code ORDER BY site_code
