SELECT events, status FROM ostask_tasks WHERE id = $1
