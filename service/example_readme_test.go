package service_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/service"
	"github.com/ostask/ostask/service/servicetest"
)

// readmeClient is the README's client snippet, byte for byte between the
// markers (internal/cli's README test checks it): create a task, follow
// its events until it ends.
func readmeClient(ctx context.Context, url, token string) error {
	// readme:begin
	cl, err := service.NewClient(url, service.StaticToken(token)) // a Keystone token of the project
	if err != nil {
		return err
	}
	t, replayed, err := cl.Create(ctx, service.CreateRequest{Kind: "noop"}, "nightly-1") // Idempotency-Key
	if err != nil {
		return err // *service.Error: errors.Is(err, jobs.ErrKeyReused), field errors for bad params
	}
	final, err := cl.FollowEvents(ctx, t.ID, 0, func(ev jobs.Event) error {
		return nil // each event once, in order, across reconnections (Last-Event-ID)
	})
	if err != nil {
		return err
	}
	fmt.Println(replayed, final.Status)
	// readme:end
	return nil
}

// The README's client snippet, against a service over the in-memory
// backend and a worker that runs every task at once.
func Example_readme() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := servicetest.New()
	auth := servicetest.Auth{"tok": {Project: service.Ref{ID: "p1", Name: "demo"}, ExpiresAt: time.Now().Add(time.Hour)}}
	s, err := service.New(service.Config{Backend: b, Auth: auth})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.CloseStreams()
	done := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	go func() {
		defer close(done)
		_ = b.Run(wctx, "example-worker")
	}()
	defer func() { stop(); <-done }()
	if err := readmeClient(ctx, srv.URL, "tok"); err != nil {
		panic(err)
	}
	// Output: false succeeded
}
