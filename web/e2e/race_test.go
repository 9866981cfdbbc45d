//go:build race

package e2e

// raceEnabled: under -race the browser tests are skipped; they drive
// separate processes (the service, chromium), which the race detector
// does not watch, and the run without -race covers them.
const raceEnabled = true
