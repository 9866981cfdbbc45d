-- A queued task is cancelled at once: no worker acted on it yet.
UPDATE ostask_tasks SET status = 'cancelled', cancel_requested = 1, change = $2, updated_at = $3, finished_at = $3, events = events + 1
WHERE id = $1 AND status = 'queued' AND worker = ''
RETURNING events
