UPDATE ostask_tasks SET cancel_requested = 1, change = $2, updated_at = $3
WHERE id = $1 AND status IN ('queued', 'running', 'reverting')
