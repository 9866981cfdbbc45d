-- The holder hands the task back (shutdown) to be taken by another worker at once.
UPDATE ostask_tasks SET worker = '', lease_until = 0, job_id = $3, updated_at = $4, change = $5
WHERE id = $1 AND worker = $2 AND status IN ('queued', 'running', 'reverting')
