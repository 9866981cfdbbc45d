SELECT epoch FROM ostask_task_events WHERE task_id = $1 ORDER BY seq
