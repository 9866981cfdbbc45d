-- Runs and their atoms. Times are Unix nanoseconds (UTC); JSON columns
-- hold text checked by the application.
CREATE TABLE ostask_runs (
	id         TEXT    NOT NULL PRIMARY KEY,
	flow       TEXT    NOT NULL,
	version    TEXT    NOT NULL,
	params     TEXT    NOT NULL,
	state      TEXT    NOT NULL,
	owner      TEXT    NOT NULL,
	epoch      INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX ostask_runs_created ON ostask_runs (created_at DESC);

CREATE TABLE ostask_atoms (
	run_id         TEXT    NOT NULL REFERENCES ostask_runs (id) ON DELETE CASCADE,
	name           TEXT    NOT NULL,
	version        TEXT    NOT NULL,
	state          TEXT    NOT NULL,
	attempts       INTEGER NOT NULL,
	result         TEXT,
	failure        TEXT,
	revert_failure TEXT,
	decision       TEXT    NOT NULL DEFAULT '',
	history        TEXT,
	started_at     INTEGER,
	finished_at    INTEGER,
	updated_at     INTEGER NOT NULL,
	PRIMARY KEY (run_id, name)
) STRICT, WITHOUT ROWID;
