package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ostask/ostask/ops"
)

// outcome is one operation's result as the CLI reports it.
type outcome struct {
	Label    string  `json:"name"`
	ID       string  `json:"id,omitempty"`
	Status   string  `json:"status,omitempty"`
	Attempts int     `json:"attempts"`
	Seconds  float64 `json:"seconds"`
	Error    string  `json:"error,omitempty"`
	err      error
}

// started is an operation in flight, whatever its result type.
type started struct {
	id     func() string
	onDone func(func(status string, attempts int, err error))
}

// track adapts an ops.Operation for the runner; status names the result.
func track[T any](op *ops.Operation[T], status func(T) string) started {
	return started{
		id: op.ID,
		onDone: func(cb func(string, int, error)) {
			op.OnDone(func(v T, err error) {
				s := ""
				if err == nil {
					s = status(v)
				}
				cb(s, op.Attempts(), err)
			})
		},
	}
}

// runOps starts n operations (at most 16 calls at once), shows their
// progress, waits for all of them unless noWait, and reports. It fails if
// any operation failed.
func runOps(ctx context.Context, out io.Writer, phaseName string, labels []string, wf *waitFlags,
	start func(ctx context.Context, i int) (started, error)) error {
	d := newDisplay(ctx, out, wf.json)
	ph := d.phase(phaseName, len(labels))
	results := make([]outcome, len(labels))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var startErr error
	var mu sync.Mutex
	for i, label := range labels {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			d.abort()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem }()
			it := ph.item(label)
			t0 := time.Now()
			st, err := start(ctx, i)
			if err != nil {
				results[i] = outcome{Label: label, Error: err.Error(), err: err}
				it.finish("", 0, err)
				mu.Lock()
				if startErr == nil {
					startErr = err
				}
				mu.Unlock()
				wg.Done()
				return
			}
			if wf.noWait {
				results[i] = outcome{Label: label, ID: st.id(), Status: "accepted", Attempts: 1}
				it.finish("accepted", 1, nil)
				wg.Done()
				return
			}
			st.onDone(func(status string, attempts int, err error) {
				o := outcome{Label: label, ID: st.id(), Status: status, Attempts: attempts, Seconds: time.Since(t0).Seconds(), err: err}
				if err != nil {
					o.Error = err.Error()
				}
				results[i] = o
				it.finish(status, attempts, err)
				wg.Done()
			})
		}()
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
		d.wait()
	case <-ctx.Done():
		d.abort()
		<-waited // operations fail promptly once ctx is cancelled
		return ctx.Err()
	}
	var failed int
	for _, r := range results {
		if r.err != nil || r.Error != "" {
			failed++
		}
	}
	if wf.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else if !d.tty {
		fmt.Fprintf(out, "%s: %d of %d succeeded\n", phaseName, len(results)-failed, len(results))
	}
	if failed > 0 {
		if len(results) == 1 {
			return &ExitError{Code: 1, Err: errors.New(results[0].Error)}
		}
		return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d operations failed", failed, len(results))}
	}
	return nil
}
