package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

func trivial(name string, opts ...flow.Option) flow.Task {
	return flow.TaskFunc(name, func(context.Context, flow.Inputs) (struct{}, error) { return struct{}{}, nil }, opts...)
}

func linearFlow(n int) *flow.Flow {
	f := flow.Linear("linear")
	for i := range n {
		f.Add(trivial(fmt.Sprint("t", i)))
	}
	return f
}

func unorderedFlow(n int) *flow.Flow {
	f := flow.Unordered("unordered")
	for i := range n {
		f.Add(trivial(fmt.Sprint("t", i)))
	}
	return f
}

// graphFlow chains n tasks through requires/provides, added in reverse.
func graphFlow(n int) *flow.Flow {
	f := flow.Graph("graph")
	for i := n - 1; i >= 0; i-- {
		opts := []flow.Option{flow.Provides(fmt.Sprint("v", i))}
		if i > 0 {
			opts = append(opts, flow.Requires(fmt.Sprint("v", i-1)))
		}
		f.Add(trivial(fmt.Sprint("t", i), opts...))
	}
	return f
}

func nestedFlow(k int) *flow.Flow {
	f := flow.Linear("nested")
	for j := range k {
		u := flow.Unordered(fmt.Sprint("u", j))
		for i := range 10 {
			u.Add(trivial(fmt.Sprintf("t%d_%d", j, i)))
		}
		f.Add(u)
	}
	return f
}

func benchRun(b *testing.B, n int, build func() *flow.Flow, opts ...engine.Option) {
	f := build()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e, err := engine.New(f, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n)/1e3, "µs/task")
}

func BenchmarkLinear1000Serial(b *testing.B) {
	benchRun(b, 1000, func() *flow.Flow { return linearFlow(1000) })
}

func BenchmarkLinear100000Serial(b *testing.B) {
	benchRun(b, 100000, func() *flow.Flow { return linearFlow(100000) })
}

func BenchmarkUnordered1000Parallel(b *testing.B) {
	benchRun(b, 1000, func() *flow.Flow { return unorderedFlow(1000) }, engine.Parallel(8))
}

func BenchmarkGraph1000(b *testing.B) {
	benchRun(b, 1000, func() *flow.Flow { return graphFlow(1000) })
}

func BenchmarkNested(b *testing.B) {
	for _, k := range []int{6, 20} {
		b.Run(fmt.Sprint("K=", k), func(b *testing.B) {
			benchRun(b, k*10, func() *flow.Flow { return nestedFlow(k) }, engine.Parallel(8))
		})
	}
}

// BenchmarkRevert50 measures the time from the failure of task 50 of 100 to
// the end of the revert of the 50 tasks that ran.
func BenchmarkRevert50(b *testing.B) {
	var failedAt time.Time
	f := flow.Linear("revert")
	for i := range 100 {
		if i == 49 {
			f.Add(flow.TaskFunc("t49", func(context.Context, flow.Inputs) (int, error) {
				failedAt = time.Now()
				return 0, errBoom
			}))
			continue
		}
		f.Add(trivial(fmt.Sprint("t", i)))
	}
	var total time.Duration
	b.ReportAllocs()
	for b.Loop() {
		e, _ := engine.New(f)
		err := e.Run(context.Background())
		total += time.Since(failedAt)
		if !errors.Is(err, errBoom) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N)/1e3, "µs-revert")
}
