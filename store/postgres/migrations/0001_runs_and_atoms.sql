-- Runs and their atoms. JSON columns use json, not jsonb: values come
-- back byte for byte as written, and jsonb would refuse \u0000. Rows are
-- updated at every transition: free room in each page (fillfactor) lets
-- PostgreSQL update them in place (HOT) instead of touching the indexes.
CREATE TABLE ostask_runs (
	id         text        NOT NULL PRIMARY KEY,
	flow       text        NOT NULL,
	version    text        NOT NULL,
	params     json        NOT NULL,
	state      text        NOT NULL,
	owner      text        NOT NULL,
	epoch      bigint      NOT NULL,
	seq        bigint      NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
) WITH (fillfactor = 50);

CREATE INDEX ostask_runs_created ON ostask_runs (created_at DESC);

CREATE TABLE ostask_atoms (
	run_id         text        NOT NULL REFERENCES ostask_runs (id) ON DELETE CASCADE,
	name           text        NOT NULL,
	version        text        NOT NULL,
	state          text        NOT NULL,
	attempts       integer     NOT NULL,
	result         json,
	failure        json,
	revert_failure json,
	decision       text        NOT NULL DEFAULT '',
	history        json,
	started_at     timestamptz,
	finished_at    timestamptz,
	updated_at     timestamptz NOT NULL,
	PRIMARY KEY (run_id, name)
) WITH (fillfactor = 70);
