-- Tasks that made or acted on a resource: $6 type ('' any), $7 id.
SELECT id, project, kind, status, params, options, idem_key, request_hash, job_id, progress_done, progress_total, progress_current, result, resources, error, attempts, losses, worker, epoch, lease_until, cancel_requested, events, change, deadline, created_at, updated_at, started_at, finished_at FROM ostask_tasks
WHERE id IN (SELECT task_id FROM ostask_task_resources WHERE rid = $7 AND ($6 = '' OR rtype = $6))
AND ($1 = '' OR project = $1) AND ($2 = '' OR kind = $2) AND ($3 = '' OR status = $3) AND ($4 = '' OR id < $4)
ORDER BY id DESC LIMIT $5
