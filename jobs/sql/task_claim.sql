-- The lease holder records the epoch it acquired the flow run with.
UPDATE ostask_tasks SET epoch = $3, attempts = attempts + 1, status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
	started_at = CASE WHEN started_at = 0 THEN $4 ELSE started_at END, deadline = CASE WHEN deadline <= 0 THEN $5 ELSE deadline END,
	updated_at = $4, change = $6, events = events + 1
WHERE id = $1 AND worker = $2 AND epoch < $3 AND status IN ('queued', 'running', 'reverting')
RETURNING events, status, started_at, deadline, attempts, cancel_requested
