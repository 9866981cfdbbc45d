-- task_lease, with what a first claim writes besides the task row (the
-- claim's history and event, whose body $7 has no seq: the column has it)
-- in the same statement; the last column says whether it claimed.
WITH l AS (
UPDATE ostask_tasks SET worker = $2, lease_until = $3, updated_at = $4, change = $5,
	epoch = CASE WHEN epoch = 0 AND losses = 0 THEN 1 ELSE epoch END,
	attempts = CASE WHEN epoch = 0 AND losses = 0 THEN attempts + 1 ELSE attempts END,
	status = CASE WHEN epoch = 0 AND losses = 0 AND status = 'queued' THEN 'running' ELSE status END,
	started_at = CASE WHEN epoch = 0 AND losses = 0 AND started_at = 0 THEN $4 ELSE started_at END,
	events = CASE WHEN epoch = 0 AND losses = 0 THEN events + 1 ELSE events END,
	deadline = CASE WHEN epoch = 0 AND losses = 0 AND deadline <= 0 THEN (CASE WHEN deadline < 0 THEN $4 - deadline ELSE $6 END) ELSE deadline END
WHERE id = $1 AND status IN ('queued', 'running', 'reverting') AND (worker = '' OR lease_until < $4)
RETURNING id, project, kind, status, params, options, idem_key, request_hash, job_id, progress_done, progress_total, progress_current, result, resources, error, attempts, losses, worker, epoch, lease_until, cancel_requested, events, change, deadline, created_at, updated_at, started_at, finished_at,
	(epoch = 1 AND attempts = 1 AND started_at = $4) AS claimed
), c AS (
INSERT INTO ostask_task_claims (task_id, epoch, worker, claimed_at) SELECT id, 1, $2, $4 FROM l WHERE claimed
), e AS (
INSERT INTO ostask_task_events (task_id, seq, epoch, body) SELECT id, events, 1, $7 FROM l WHERE claimed
)
SELECT * FROM l
