-- task_finish with the task's last events ($13: bodies without seq, in
-- order, numbered up to the new count) and resources ($14 types, $15 ids)
-- in the same statement. No row: the guard refused, nothing was written.
WITH f AS (
UPDATE ostask_tasks SET status = $3, progress_done = $4, progress_total = $5, progress_current = '',
	resources = $6, result = $7, error = $8, updated_at = $9, finished_at = $9, change = $10,
	events = events + $11, worker = '', lease_until = 0
WHERE id = $1 AND epoch = $2 AND worker = $12
RETURNING events
), e AS (
INSERT INTO ostask_task_events (task_id, seq, epoch, body)
SELECT $1, f.events - $11 + v.i, $2, v.body FROM f, unnest($13::text[]) WITH ORDINALITY AS v(body, i)
), r AS (
INSERT INTO ostask_task_resources (rtype, rid, task_id)
SELECT x.t, x.id, $1 FROM f, unnest($14::text[], $15::text[]) AS x(t, id)
ON CONFLICT DO NOTHING
)
SELECT events FROM f
