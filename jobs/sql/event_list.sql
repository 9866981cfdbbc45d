-- A task's events after seq $2; a body's own seq may be 0 (written before
-- its number was known): the column's is the event's.
SELECT seq, body FROM ostask_task_events WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
