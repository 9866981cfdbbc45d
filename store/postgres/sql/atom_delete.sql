-- After run_delete, in the same transaction and with a newer snapshot: a
-- write that held the run row until just before is seen, so none of its
-- atoms is left behind.
DELETE FROM ostask_atoms WHERE run_id = $1
