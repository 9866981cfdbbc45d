// Package enginetest checks the promise of resumable flows against any
// engine.Storage: a run cut short at any point (a crash right after any of
// its saves, a Suspend, a cancelled context) resumes to the same end as an
// uninterrupted run, and no atom executes or reverts more often. A durable
// Storage passes these checks when it keeps every record as saved.
//
//	func TestResume(t *testing.T) {
//		for _, c := range enginetest.Cases() {
//			t.Run(c.Name, func(t *testing.T) {
//				enginetest.CrashAtEverySave(t, c, func() engine.Storage { return newStore(t) })
//			})
//		}
//	}
//
// CrashStore, the wrapper that crashes a run after a chosen save and counts
// what the run recorded, and Step, a task that fails on its inputs' say,
// serve to write more such checks. A Storage that is an engine.Batcher is
// wrapped in a CrashBatcher: a batch is one save, written whole or not at
// all, so the checks crash it between transactions, where a real crash
// can leave it.
package enginetest
