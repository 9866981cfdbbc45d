-- Followed by the rows (rtype, rid, task_id), ... and ON CONFLICT DO NOTHING.
INSERT INTO ostask_task_resources (rtype, rid, task_id) VALUES 
