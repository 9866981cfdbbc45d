-- The foreign key from atoms to runs goes. Every write of a run's atoms
-- runs in the transaction that moves its run row (the fence), so no atom
-- is written for a run that is not there; and DeleteRun removes a run's
-- atoms itself. The key's check on each new atom locked the run row again
-- and logged the lock: about a sixth of the server's work in a linear
-- flow's write, for nothing the fence did not already ensure.
ALTER TABLE ostask_atoms DROP CONSTRAINT IF EXISTS ostask_atoms_run_id_fkey;
