-- Tasks, their event logs, the resources they made or acted on, and the
-- history of their claims (fencing). Times are Unix nanoseconds, 0 for
-- none; JSON columns hold text checked by the application.
CREATE TABLE ostask_tasks (
	id               text    COLLATE "C" NOT NULL PRIMARY KEY,
	project          text    NOT NULL,
	kind             text    NOT NULL,
	status           text    NOT NULL,
	params           text    NOT NULL,
	options          text    NOT NULL,
	idem_key         text,
	request_hash     text    NOT NULL,
	job_id           bigint NOT NULL DEFAULT 0,
	progress_done    bigint NOT NULL DEFAULT 0,
	progress_total   bigint NOT NULL DEFAULT 0,
	progress_current text    NOT NULL DEFAULT '',
	result           text,
	resources        text,
	error            text,
	attempts         bigint NOT NULL DEFAULT 0,
	losses           bigint NOT NULL DEFAULT 0,
	worker           text    NOT NULL DEFAULT '',
	epoch            bigint NOT NULL DEFAULT 0,
	lease_until      bigint NOT NULL DEFAULT 0,
	cancel_requested bigint NOT NULL DEFAULT 0,
	events           bigint NOT NULL DEFAULT 0,
	change           bigint NOT NULL,
	deadline         bigint NOT NULL DEFAULT 0,
	created_at       bigint NOT NULL,
	updated_at       bigint NOT NULL,
	started_at       bigint NOT NULL DEFAULT 0,
	finished_at      bigint NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX ostask_tasks_idem ON ostask_tasks (project, idem_key);
CREATE INDEX ostask_tasks_change ON ostask_tasks (change);
CREATE INDEX ostask_tasks_project ON ostask_tasks (project, id);
CREATE INDEX ostask_tasks_lease ON ostask_tasks (status, lease_until);

CREATE TABLE ostask_task_events (
	task_id text    NOT NULL,
	seq     bigint NOT NULL,
	epoch   bigint NOT NULL,
	body    text    NOT NULL,
	PRIMARY KEY (task_id, seq)
);

CREATE TABLE ostask_task_resources (
	rtype   text NOT NULL,
	rid     text NOT NULL,
	task_id text NOT NULL,
	PRIMARY KEY (rtype, rid, task_id)
);

CREATE INDEX ostask_task_resources_rid ON ostask_task_resources (rid, task_id);

CREATE TABLE ostask_task_claims (
	task_id    text    NOT NULL,
	epoch      bigint NOT NULL,
	worker     text    NOT NULL,
	claimed_at bigint NOT NULL,
	PRIMARY KEY (task_id, epoch)
);

-- One global change number, taken by every transaction that changes
-- tasks while it holds the row: change numbers are in commit order, so a
-- reader that saw change N has seen every change before it.
CREATE TABLE ostask_counters (
	name  text    NOT NULL PRIMARY KEY,
	value bigint NOT NULL
);

INSERT INTO ostask_counters (name, value) VALUES ('change', 0);
