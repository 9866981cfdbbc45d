package store

// OnQueued calls fn each time a write of db joins the group-commit queue
// (behind a write in progress). Set it before any write; without group
// commit it does nothing.
func OnQueued(db *DB, fn func()) {
	if db.group == nil {
		return
	}
	db.group.mu.Lock()
	db.group.queued = fn
	db.group.mu.Unlock()
}
