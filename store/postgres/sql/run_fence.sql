SELECT epoch, seq, state, owner FROM ostask_runs WHERE id = $1
