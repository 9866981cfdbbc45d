DELETE FROM ostask_runs WHERE id = $1
