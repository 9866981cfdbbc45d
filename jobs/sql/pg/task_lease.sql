-- task_lease (its text stands in for the name in braces below), with what a first claim
-- writes besides the task row (the claim's history and event, whose body
-- $7 has no seq: the column has it) in the same statement; the last
-- column says whether it claimed.
WITH l AS (
{{task_lease}},
	(epoch = 1 AND attempts = 1 AND started_at = $4) AS claimed
), c AS (
INSERT INTO ostask_task_claims (task_id, epoch, worker, claimed_at) SELECT id, 1, $2, $4 FROM l WHERE claimed
), e AS (
INSERT INTO ostask_task_events (task_id, seq, epoch, body) SELECT id, events, 1, $7 FROM l WHERE claimed
)
SELECT * FROM l
