package cli

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ostask/ostask/ops"
)

// monitorCheckEvery is how often a waiting command looks at the health of
// its cloud's monitors.
var monitorCheckEvery = time.Second

// warnMonitors tells the user, through println, when a monitor's rounds
// (as stats, a Cloud's Stats, reports them)
// keep failing — every completion is then delayed, though none fails —
// and when it recovers, until stop is called. A failing round alone is
// not worth a line: the monitor retries with backoff, and a burst of
// throttling is normal.
func warnMonitors(stats func() ops.Stats, println func(string)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(monitorCheckEvery)
		defer t.Stop()
		warned := map[ops.Kind]int{} // failed rounds when warned
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			mons := stats().Monitors
			kinds := make([]ops.Kind, 0, len(mons))
			for k := range mons {
				kinds = append(kinds, k)
			}
			slices.Sort(kinds)
			for _, kind := range kinds {
				ms := mons[kind]
				switch n, was := warned[kind]; {
				case !was && ms.FailingRounds >= ops.MonitorFailingAfter:
					warned[kind] = ms.FailingRounds
					println(fmt.Sprintf("ostask: warning: %v", ms.Err))
				case was && ms.Err == nil:
					delete(warned, kind)
					println(fmt.Sprintf("ostask: the %s monitor works again (after %d or more failed rounds)", kind, n))
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
