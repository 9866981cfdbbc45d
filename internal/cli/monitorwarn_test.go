package cli

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ostask/ostask/ops"
)

// A monitor whose rounds keep failing gets one warning line with the
// cloud's error, and one line when it works again; a round or two of
// trouble gets none.
func TestWarnMonitors(t *testing.T) {
	old := monitorCheckEvery
	monitorCheckEvery = time.Millisecond
	defer func() { monitorCheckEvery = old }()

	boom := errors.New("503 Service Unavailable on GET /servers/detail")
	failing := func(n int) ops.Stats {
		ms := ops.MonitorStats{FailingRounds: n}
		if n > 0 {
			ms.Err = &ops.MonitorError{Kind: ops.KindServer, Rounds: n, Err: boom}
		}
		return ops.Stats{Monitors: map[ops.Kind]ops.MonitorStats{ops.KindServer: ms, ops.KindVolume: {}}}
	}
	// The health the checks see, one per check; the last repeats.
	seq := []ops.Stats{failing(0), failing(1), failing(2), failing(ops.MonitorFailingAfter), failing(ops.MonitorFailingAfter + 1),
		failing(ops.MonitorFailingAfter + 2), failing(0), failing(0)}
	var mu sync.Mutex
	i := 0
	seen := make(chan struct{})
	stats := func() ops.Stats {
		mu.Lock()
		defer mu.Unlock()
		s := seq[min(i, len(seq)-1)]
		if i++; i == len(seq)+1 {
			close(seen)
		}
		return s
	}
	var lines []string
	stop := warnMonitors(stats, func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	})
	<-seen
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 2 {
		t.Fatalf("%d lines, want a warning and a recovery:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[0], "warning") || !strings.Contains(lines[0], "server monitor") || !strings.Contains(lines[0], boom.Error()) {
		t.Errorf("warning %q does not name the monitor and the cloud's error", lines[0])
	}
	if !strings.Contains(lines[1], "server monitor works again") {
		t.Errorf("recovery line %q", lines[1])
	}
}
