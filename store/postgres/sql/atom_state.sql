SELECT state FROM ostask_atoms WHERE run_id = $1 AND name = $2
