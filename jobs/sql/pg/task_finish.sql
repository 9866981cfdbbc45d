-- task_finish (its text stands in for the name in braces below) with the task's last
-- events ($13: bodies without seq, in order, numbered up to the new count)
-- and resources ($14 types, $15 ids) in the same statement. No row: the
-- guard refused, nothing was written.
WITH f AS (
{{task_finish}}
), e AS (
INSERT INTO ostask_task_events (task_id, seq, epoch, body)
SELECT $1, f.events - $11 + v.i, $2, v.body FROM f, unnest($13::text[]) WITH ORDINALITY AS v(body, i)
), r AS (
INSERT INTO ostask_task_resources (rtype, rid, task_id)
SELECT x.t, x.id, $1 FROM f, unnest($14::text[], $15::text[]) AS x(t, id)
ON CONFLICT DO NOTHING
)
SELECT events FROM f
