package ops

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// A round whose lists may have skipped a change (unstable paging) must not
// move the changes-since window: the next round asks for the same window
// again, until a stable round moves it.
func TestUnstableRoundKeepsWindow(t *testing.T) {
	c := &Cloud{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	unstable := []bool{true, true, false, false}
	var got []time.Time
	var starts []time.Time
	m := newMonitor(c, KindServer, func(_ context.Context, req pollRequest, _ func([]*observation)) error {
		got = append(got, req.Since)
		starts = append(starts, time.Now())
		req.report.unstable = unstable[len(got)-1]
		return nil
	})
	callTime := time.Now().Add(-time.Minute)
	w := &watch{id: "srv", op: "create", since: callTime, judge: func(*observation) (verdict, error) { return pending, nil },
		finish: func(*observation, error) {}}
	m.watches[w.id] = []*watch{w}
	m.n = 1
	for range unstable {
		if err := m.doRound(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	want0 := callTime.Add(-c.cfg.Overlap)
	for i := range 3 {
		if !got[i].Equal(want0) {
			t.Errorf("round %d asked since %v, want the first window %v (rounds before it were unstable)", i+1, got[i], want0)
		}
	}
	if !got[3].After(want0) || got[3].After(starts[2]) {
		t.Errorf("round 4 asked since %v: after stable round 3 the window must move to round 3's start (%v) less the overlap", got[3], starts[2])
	}
	if st := m.stats(); st.UnstableRounds != 2 {
		t.Errorf("%d unstable rounds counted, want 2", st.UnstableRounds)
	}
}

// The monitor's health follows its rounds: failures in a row, and an error
// only while they last.
func TestMonitorHealth(t *testing.T) {
	c := &Cloud{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	m := newMonitor(c, KindVolume, nil)
	boom := errors.New("boom")
	for i := 1; i <= 3; i++ {
		if n := m.recordRound(boom); n != i {
			t.Fatalf("failure %d counted as %d in a row", i, n)
		}
	}
	st := m.stats()
	var me *MonitorError
	if !errors.As(st.Err, &me) || me.Rounds != 3 || !errors.Is(st.Err, boom) || st.FailedRounds != 3 {
		t.Fatalf("after 3 failures: %+v", st)
	}
	if n := m.recordRound(nil); n != 0 {
		t.Fatalf("a success left %d failures in a row", n)
	}
	if st := m.stats(); st.Err != nil || st.FailingRounds != 0 || st.FailedRounds != 3 {
		t.Fatalf("after a success: %+v (the error must clear, the total stay)", st)
	}
}

// The wait after failed rounds doubles from 2 × MinInterval and stops at
// 32 × MinInterval or a minute.
func TestMonitorBackoff(t *testing.T) {
	for _, tc := range []struct {
		min      time.Duration
		failures int
		want     time.Duration
	}{
		{time.Second, 1, 2 * time.Second},
		{time.Second, 2, 4 * time.Second},
		{time.Second, 5, 32 * time.Second},
		{time.Second, 9, 32 * time.Second},
		{5 * time.Second, 9, time.Minute},
	} {
		c := &Cloud{cfg: Config{MinInterval: tc.min}.withDefaults()}
		m := newMonitor(c, KindServer, nil)
		// u = 0: no jitter.
		if got := m.backoff().Delay(tc.failures, 0); got != tc.want {
			t.Errorf("MinInterval %s, %d failures: wait %s, want %s", tc.min, tc.failures, got, tc.want)
		}
	}
}

// A watch no round has shown is looked at directly (pollRequest.Stale):
// deletes after staleRounds, other server watches only after
// serverStaleRounds, so a burst of boots waiting for a compute host does
// not cost a GET per server.
func TestStaleThresholds(t *testing.T) {
	c := &Cloud{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	firstStale := map[string]int{}
	round := 0
	m := newMonitor(c, KindServer, func(_ context.Context, req pollRequest, _ func([]*observation)) error {
		round++
		for id := range req.Stale {
			if _, ok := firstStale[id]; !ok {
				firstStale[id] = round
			}
		}
		return nil
	})
	m.staleAfter = serverStaleRounds
	pendingJudge := func(*observation) (verdict, error) { return pending, nil }
	for _, w := range []*watch{
		{id: "deleting", op: "delete", wantGone: true, judge: pendingJudge, finish: func(*observation, error) {}},
		{id: "building", op: "create", judge: pendingJudge, finish: func(*observation, error) {}},
		// A server being created and deleted at once: the delete's need
		// decides.
		{id: "both", op: "create", judge: pendingJudge, finish: func(*observation, error) {}},
		{id: "both", op: "delete", wantGone: true, judge: pendingJudge, finish: func(*observation, error) {}},
	} {
		m.watches[w.id] = append(m.watches[w.id], w)
		m.n++
	}
	for range serverStaleRounds + 1 {
		if err := m.doRound(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	if got := firstStale["deleting"]; got != staleRounds {
		t.Errorf("the delete watch was first stale in round %d, want %d", got, staleRounds)
	}
	if got := firstStale["both"]; got != staleRounds {
		t.Errorf("a server with a create and a delete watch was first stale in round %d, want %d", got, staleRounds)
	}
	if got := firstStale["building"]; got != serverStaleRounds {
		t.Errorf("the create watch was first stale in round %d, want %d", got, serverStaleRounds)
	}
}
