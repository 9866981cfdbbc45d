-- Tasks, their event logs, the resources they made or acted on, and the
-- history of their claims (fencing). Times are Unix nanoseconds, 0 for
-- none; JSON columns hold text checked by the application.
CREATE TABLE ostask_tasks (
	id               TEXT    NOT NULL PRIMARY KEY,
	project          TEXT    NOT NULL,
	kind             TEXT    NOT NULL,
	status           TEXT    NOT NULL,
	params           TEXT    NOT NULL,
	options          TEXT    NOT NULL,
	idem_key         TEXT,
	request_hash     TEXT    NOT NULL,
	job_id           INTEGER NOT NULL DEFAULT 0,
	progress_done    INTEGER NOT NULL DEFAULT 0,
	progress_total   INTEGER NOT NULL DEFAULT 0,
	progress_current TEXT    NOT NULL DEFAULT '',
	result           TEXT,
	resources        TEXT,
	error            TEXT,
	attempts         INTEGER NOT NULL DEFAULT 0,
	losses           INTEGER NOT NULL DEFAULT 0,
	worker           TEXT    NOT NULL DEFAULT '',
	epoch            INTEGER NOT NULL DEFAULT 0,
	lease_until      INTEGER NOT NULL DEFAULT 0,
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	events           INTEGER NOT NULL DEFAULT 0,
	change           INTEGER NOT NULL,
	deadline         INTEGER NOT NULL DEFAULT 0,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	started_at       INTEGER NOT NULL DEFAULT 0,
	finished_at      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE UNIQUE INDEX ostask_tasks_idem ON ostask_tasks (project, idem_key);
CREATE INDEX ostask_tasks_change ON ostask_tasks (change);
CREATE INDEX ostask_tasks_project ON ostask_tasks (project, id);
CREATE INDEX ostask_tasks_lease ON ostask_tasks (status, lease_until);

CREATE TABLE ostask_task_events (
	task_id TEXT    NOT NULL,
	seq     INTEGER NOT NULL,
	epoch   INTEGER NOT NULL,
	body    TEXT    NOT NULL,
	PRIMARY KEY (task_id, seq)
) STRICT;

CREATE TABLE ostask_task_resources (
	rtype   TEXT NOT NULL,
	rid     TEXT NOT NULL,
	task_id TEXT NOT NULL,
	PRIMARY KEY (rtype, rid, task_id)
) STRICT;

CREATE INDEX ostask_task_resources_rid ON ostask_task_resources (rid, task_id);

CREATE TABLE ostask_task_claims (
	task_id    TEXT    NOT NULL,
	epoch      INTEGER NOT NULL,
	worker     TEXT    NOT NULL,
	claimed_at INTEGER NOT NULL,
	PRIMARY KEY (task_id, epoch)
) STRICT;

-- One global change number, taken by every transaction that changes
-- tasks while it holds the row: change numbers are in commit order, so a
-- reader that saw change N has seen every change before it.
CREATE TABLE ostask_counters (
	name  TEXT    NOT NULL PRIMARY KEY,
	value INTEGER NOT NULL
) STRICT;

INSERT INTO ostask_counters (name, value) VALUES ('change', 0);
