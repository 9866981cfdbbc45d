package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

const workers = 8

var errBoom = errors.New("task 50 fails")

func trivial(name string, opts ...flow.Option) flow.Task {
	return flow.TaskFunc(name, func(context.Context, flow.Inputs) (struct{}, error) { return struct{}{}, nil }, opts...)
}

// build returns the flow of a shape and the engine options to run it with;
// failedAt is set by the failing task of the revert shape.
func build(family string, n int, failedAt *time.Time) (*flow.Flow, []engine.Option) {
	switch family {
	case "linear":
		f := flow.Linear("linear")
		for i := range n {
			f.Add(trivial(fmt.Sprint("t", i)))
		}
		return f, []engine.Option{engine.Serial()}
	case "unordered":
		f := flow.Unordered("unordered")
		for i := range n {
			f.Add(trivial(fmt.Sprint("t", i)))
		}
		return f, []engine.Option{engine.Parallel(workers)}
	case "graph":
		f := flow.Graph("graph")
		for i := n - 1; i >= 0; i-- {
			opts := []flow.Option{flow.Provides(fmt.Sprint("v", i))}
			if i > 0 {
				opts = append(opts, flow.Requires(fmt.Sprint("v", i-1)))
			}
			f.Add(trivial(fmt.Sprint("t", i), opts...))
		}
		return f, []engine.Option{engine.Serial()}
	case "nested":
		f := flow.Linear("nested")
		for j := range n {
			u := flow.Unordered(fmt.Sprint("u", j))
			for i := range 10 {
				u.Add(trivial(fmt.Sprintf("t%d_%d", j, i)))
			}
			f.Add(u)
		}
		return f, []engine.Option{engine.Parallel(workers)}
	case "revert":
		f := flow.Linear("revert")
		for i := range n {
			if i == n/2-1 {
				f.Add(flow.TaskFunc(fmt.Sprint("t", i), func(context.Context, flow.Inputs) (int, error) {
					*failedAt = time.Now()
					return 0, errBoom
				}))
				continue
			}
			f.Add(trivial(fmt.Sprint("t", i)))
		}
		return f, []engine.Option{engine.Serial()}
	}
	return nil, nil
}

// runChild runs one shape repeatedly (at least 3 times and 0.5 s, at most
// 200 times) and prints the median run as JSON.
func runChild(spec string) error {
	var family string
	var n int
	if _, err := fmt.Sscanf(spec, "%s", &family); err != nil {
		return err
	}
	for i := range spec {
		if spec[i] == ':' {
			family = spec[:i]
			if _, err := fmt.Sscan(spec[i+1:], &n); err != nil {
				return err
			}
		}
	}
	var times, reverts []float64
	start := time.Now()
	for len(times) < 3 || (time.Since(start) < 500*time.Millisecond && len(times) < 200) {
		var failedAt time.Time
		t0 := time.Now()
		f, opts := build(family, n, &failedAt)
		if f == nil {
			return fmt.Errorf("unknown shape %q", spec)
		}
		e, err := engine.New(f, opts...)
		if err != nil {
			return err
		}
		err = e.Run(context.Background())
		t1 := time.Now()
		if family == "revert" {
			if !errors.Is(err, errBoom) {
				return fmt.Errorf("revert shape: %v", err)
			}
			reverts = append(reverts, t1.Sub(failedAt).Seconds())
		} else if err != nil {
			return err
		}
		times = append(times, t1.Sub(t0).Seconds())
	}
	r := result{Seconds: median(times), Runs: len(times)}
	if len(reverts) > 0 {
		r.RevertSeconds = median(reverts)
	}
	return json.NewEncoder(os.Stdout).Encode(struct {
		Seconds       float64 `json:"seconds"`
		RevertSeconds float64 `json:"revert_seconds,omitempty"`
		Runs          int     `json:"runs"`
	}{r.Seconds, r.RevertSeconds, r.Runs})
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
