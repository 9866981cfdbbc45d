-- A task no worker can run (poison, unbuildable) fails; guarded by the lease $2 holds.
UPDATE ostask_tasks SET status = 'failed', error = $3, updated_at = $4, finished_at = $4, change = $5,
	events = events + 1, worker = '', lease_until = 0
WHERE id = $1 AND worker = $2 AND status IN ('queued', 'running', 'reverting')
RETURNING events
