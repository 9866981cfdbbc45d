-- The holder's final write.
UPDATE ostask_tasks SET status = $3, progress_done = $4, progress_total = $5, progress_current = '',
	resources = $6, result = $7, error = $8, updated_at = $9, finished_at = $9, change = $10,
	events = events + $11, worker = '', lease_until = 0
WHERE id = $1 AND epoch = $2 AND worker = $12
RETURNING events
