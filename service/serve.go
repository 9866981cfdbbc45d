package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ShutdownTimeout bounds how long Serve waits for requests in flight
// once its context ended.
const ShutdownTimeout = 10 * time.Second

// Serve serves s on ln until ctx ends, then shuts down: it stops
// accepting, ends the event streams (clients reconnect elsewhere with
// Last-Event-ID) and waits up to ShutdownTimeout for other requests in
// flight. It returns nil after a shutdown ctx asked for.
func Serve(ctx context.Context, ln net.Listener, s *Server) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	hs.RegisterOnShutdown(s.CloseStreams)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("service: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("service: shutdown: %w", err)
	}
	return nil
}

// CloseStreams ends every open event stream, and those opened after it
// at once; for shutdowns (http.Server.Shutdown waits for handlers, and a
// stream's never ends by itself).
func (s *Server) CloseStreams() { s.closeStreams() }

// streamContext is r's context, also cancelled by CloseStreams.
func (s *Server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.streams, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
