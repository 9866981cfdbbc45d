-- The holder's write of status and progress, with n new events.
UPDATE ostask_tasks SET status = $3, progress_done = $4, progress_total = $5, progress_current = $6,
	resources = $7, updated_at = $8, change = $9, events = events + $10
WHERE id = $1 AND epoch = $2 AND worker = $11
RETURNING events
