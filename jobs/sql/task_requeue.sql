-- The reaper hands an expired task to a new River job; guarded by what it saw.
UPDATE ostask_tasks SET worker = '', lease_until = 0, losses = losses + $5, job_id = $3, change = $4, updated_at = $7
WHERE id = $1 AND status IN ('running', 'reverting', 'queued') AND (worker <> '' AND lease_until < $2 OR worker = '' AND job_id = $6)
RETURNING id
