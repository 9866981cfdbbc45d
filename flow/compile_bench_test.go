package flow_test

import (
	"fmt"
	"testing"

	"github.com/ostask/ostask/flow"
)

// BenchmarkCompile10000 validates a 10,000-task graph chained through
// requires/provides, nested in a linear flow with unordered parts.
func BenchmarkCompile10000(b *testing.B) {
	g := flow.Graph("g")
	for i := range 5000 {
		opts := []flow.Option{prov(fmt.Sprint("v", i))}
		if i > 0 {
			opts = append(opts, req(fmt.Sprint("v", i-1)))
		}
		g.Add(task(fmt.Sprint("g", i), opts...))
	}
	l := flow.Linear("root", g)
	for k := range 500 {
		u := flow.Unordered(fmt.Sprint("u", k))
		for i := range 10 {
			u.Add(task(fmt.Sprintf("u%d_%d", k, i), req("v4999")))
		}
		l.Add(u)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := flow.Compile(l)
		if err != nil || c.Atoms() != 10000 {
			b.Fatal(err)
		}
	}
}
