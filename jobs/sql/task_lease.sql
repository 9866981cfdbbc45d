-- A worker takes a task's lease: the task is not final and nobody holds a
-- live lease on it. A task never claimed and never lost (epoch 0, losses
-- 0) is claimed at the same time with epoch 1, the epoch of the flow run
-- the worker makes next (attempt 1, running, started now, one event, the
-- deadline from the task's own timeout or else $6): the worker knows it by
-- epoch 1, attempt 1 and started_at = $4, and writes the claim's history
-- and event in the same transaction.
-- Returns the row as it was taken.
UPDATE ostask_tasks SET worker = $2, lease_until = $3, updated_at = $4, change = $5,
	epoch = CASE WHEN epoch = 0 AND losses = 0 THEN 1 ELSE epoch END,
	attempts = CASE WHEN epoch = 0 AND losses = 0 THEN attempts + 1 ELSE attempts END,
	status = CASE WHEN epoch = 0 AND losses = 0 AND status = 'queued' THEN 'running' ELSE status END,
	started_at = CASE WHEN epoch = 0 AND losses = 0 AND started_at = 0 THEN $4 ELSE started_at END,
	events = CASE WHEN epoch = 0 AND losses = 0 THEN events + 1 ELSE events END,
	deadline = CASE WHEN epoch = 0 AND losses = 0 AND deadline <= 0 THEN (CASE WHEN deadline < 0 THEN $4 - deadline ELSE $6 END) ELSE deadline END
WHERE id = $1 AND status IN ('queued', 'running', 'reverting') AND (worker = '' OR lease_until < $4)
RETURNING id, project, kind, status, params, options, idem_key, request_hash, job_id, progress_done, progress_total, progress_current, result, resources, error, attempts, losses, worker, epoch, lease_until, cancel_requested, events, change, deadline, created_at, updated_at, started_at, finished_at
