-- $1 project ('' any), $2 kind ('' any), $3 status ('' any), $4 marker ('' none), $5 limit.
SELECT id, project, kind, status, params, options, idem_key, request_hash, job_id, progress_done, progress_total, progress_current, result, resources, error, attempts, losses, worker, epoch, lease_until, cancel_requested, events, change, deadline, created_at, updated_at, started_at, finished_at FROM ostask_tasks
WHERE ($1 = '' OR project = $1) AND ($2 = '' OR kind = $2) AND ($3 = '' OR status = $3) AND ($4 = '' OR id < $4)
ORDER BY id DESC LIMIT $5
