-- The newest failed or reverted task of the project ($1, '' any) that made or acted on the resource $2/$3.
SELECT id, project, kind, status, params, options, idem_key, request_hash, job_id, progress_done, progress_total, progress_current, result, resources, error, attempts, losses, worker, epoch, lease_until, cancel_requested, events, change, deadline, created_at, updated_at, started_at, finished_at FROM ostask_tasks
WHERE id IN (SELECT task_id FROM ostask_task_resources WHERE rtype = $2 AND rid = $3)
AND ($1 = '' OR project = $1) AND status IN ('failed', 'reverted')
ORDER BY id DESC LIMIT 1
