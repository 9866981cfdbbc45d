-- Tasks changed after $1 up to the safe horizon $2, newest change first:
-- what the queue's watcher of waits learns in one look.
SELECT id, change FROM ostask_tasks WHERE change > $1 AND change <= $2 ORDER BY change DESC LIMIT $3
