-- A worker takes a task's lease: the task is not final and nobody holds a
-- live lease on it. Returns the row as it was taken.
UPDATE ostask_tasks SET worker = $2, lease_until = $3, updated_at = $4, change = $5
WHERE id = $1 AND status IN ('queued', 'running', 'reverting') AND (worker = '' OR lease_until < $4)
RETURNING id, project, kind, status, params, options, idem_key, request_hash, job_id, progress_done, progress_total, progress_current, result, resources, error, attempts, losses, worker, epoch, lease_until, cancel_requested, events, change, deadline, created_at, updated_at, started_at, finished_at
