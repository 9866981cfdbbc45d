package future

import (
	"context"
	"testing"
)

func BenchmarkNewResolveResult(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f, p := New[int]()
		p.Resolve(i)
		if v, _ := f.Result(ctx); v != i {
			b.Fatal("wrong value")
		}
	}
}

// BenchmarkResultWait measures a Result that really blocks: the waiter
// creates the Done channel and another goroutine resolves.
func BenchmarkResultWait(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	futs := make(chan Promise[int], 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range futs {
			p.Resolve(1)
		}
	}()
	for b.Loop() {
		f, p := New[int]()
		f.Done()
		futs <- p
		if _, err := f.Result(ctx); err != nil {
			b.Fatal(err)
		}
	}
	close(futs)
	<-done
}

func BenchmarkOnDone(b *testing.B) {
	var sum int
	cb := func(v int, _ error) { sum += v }
	b.Run("pending", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, p := New[int]()
			f.OnDone(cb)
			p.Resolve(1)
		}
	})
	b.Run("complete", func(b *testing.B) {
		b.ReportAllocs()
		f := Resolved(1)
		for b.Loop() {
			f.OnDone(cb)
		}
	})
	_ = sum
}

func BenchmarkAll1000(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	futs := make([]*Future[int], n)
	ps := make([]Promise[int], n)
	b.ReportAllocs()
	for b.Loop() {
		for i := range futs {
			futs[i], ps[i] = New[int]()
		}
		all := All(futs...)
		for i, p := range ps {
			p.Resolve(i)
		}
		if v, err := all.Result(ctx); err != nil || len(v) != n {
			b.Fatal(err)
		}
	}
}

// BenchmarkPendingFuture reports the bytes of one pending future with one
// callback (B/op), the shape the monitor holds by the thousand.
func BenchmarkPendingFuture(b *testing.B) {
	keep := make([]*Future[int], 0, 1<<16)
	cb := func(int, error) {}
	b.ReportAllocs()
	for b.Loop() {
		f, _ := New[int]()
		f.OnDone(cb)
		if len(keep) == cap(keep) {
			keep = keep[:0]
		}
		keep = append(keep, f)
	}
}
