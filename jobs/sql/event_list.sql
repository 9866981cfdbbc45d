SELECT body FROM ostask_task_events WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
