package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultGroupCommit is how many runs' writes may share one transaction
// unless WithGroupCommit says otherwise.
const DefaultGroupCommit = 64

// WithGroupCommit sets how many runs' writes, ready at the same moment,
// may share one transaction (default DefaultGroupCommit). Below 2, every
// write is its own transaction. Drivers that cannot write groups (they do
// not implement GroupDriver) always write alone.
func WithGroupCommit(n int) Option { return func(c *config) { c.group = n } }

// committer shares commits between the runs of one DB (group commit).
//
// A write that finds a writer free goes at once, alone, in its caller's
// goroutine: a single run waits for nobody, and no delay is ever added to
// wait for company. Writes that arrive while every writer is busy queue;
// a writer that finishes hands its place to a flight, which writes the
// queue (up to max batches) in one transaction, then the queue that
// formed meanwhile, until none is left. Each write still returns only
// when its own batch is durable, or with its own error: a batch that
// fails (a fenced or conflicting run) is answered alone and the others
// are written again without it.
type committer struct {
	d       GroupDriver
	max     int             // batches per transaction
	writers int             // transactions written at once
	base    context.Context // ends at close
	stop    context.CancelFunc

	mu      sync.Mutex
	queue   []*commitReq
	busy    int // writers at work, inline or in flight; the queue only grows when all are
	closed  bool
	flights sync.WaitGroup

	queued func() // tests: called when a write joins the queue
}

type commitReq struct {
	ctx  context.Context
	b    *Batch
	done chan error // buffered: a flight never waits for a caller that gave up
}

func newCommitter(d GroupDriver, size int) *committer {
	ctx, cancel := context.WithCancel(context.Background())
	return &committer{d: d, max: size, writers: max(d.GroupWriters(), 1), base: ctx, stop: cancel}
}

// write writes b, alone or with the writes of other runs, and returns when
// it is durable or has failed.
func (c *committer) write(ctx context.Context, b *Batch) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.busy < c.writers {
		c.busy++
		c.mu.Unlock()
		err := c.d.Apply(ctx, b)
		c.release()
		return err
	}
	req := &commitReq{ctx: ctx, b: b, done: make(chan error, 1)}
	c.queue = append(c.queue, req)
	hook := c.queued
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// Still queued: withdrawn, nothing written. Taken by a flight: the
		// outcome is unknown, as when a context ends during a commit.
		c.mu.Lock()
		i := slices.Index(c.queue, req)
		if i >= 0 {
			c.queue = slices.Delete(c.queue, i, i+1)
		}
		c.mu.Unlock()
		if i < 0 {
			select {
			case err := <-req.done:
				return err
			default:
			}
		}
		return ctx.Err()
	}
}

// release ends an inline write: if writes queued meanwhile, its place goes
// to a flight that writes them.
func (c *committer) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 && !c.closed {
		c.flights.Add(1)
		go c.flight()
		return
	}
	c.busy--
}

// flight writes the queue, a group at a time, until it is empty.
func (c *committer) flight() {
	defer c.flights.Done()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.busy--
			c.mu.Unlock()
			return
		}
		n := min(len(c.queue), c.max)
		group := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		c.mu.Unlock()
		c.commit(group)
	}
}

// commit writes a group in one transaction and answers each member.
func (c *committer) commit(group []*commitReq) {
	ctx, cancel := c.groupContext(group)
	defer cancel()
	bs := make([]*Batch, 0, len(group))
	for len(group) > 0 {
		var err error
		if len(group) == 1 {
			err = c.d.Apply(ctx, group[0].b)
		} else {
			bs = bs[:0]
			for _, r := range group {
				bs = append(bs, r.b)
			}
			err = c.d.ApplyGroup(ctx, bs)
			var be *BatchError
			if errors.As(err, &be) && be.Index >= 0 && be.Index < len(group) {
				// Nothing was written: the failed batch gets its own
				// error, the others go again without it.
				group[be.Index].done <- be.Err
				group = slices.Delete(group, be.Index, be.Index+1)
				continue
			}
		}
		if err != nil && c.base.Err() != nil {
			err = ErrClosed
		}
		for _, r := range group {
			r.done <- err
		}
		return
	}
}

// groupContext returns the context of a group's transaction: it ends when
// every member's context has ended (one caller giving up does not fail
// the others' writes), or when the DB closes.
func (c *committer) groupContext(group []*commitReq) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.base)
	var left atomic.Int64
	left.Store(int64(len(group)))
	stops := make([]func() bool, 0, len(group))
	for _, r := range group {
		stops = append(stops, context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// close refuses new writes, answers the queued ones with ErrClosed, ends
// the flights' transactions and waits for the flights to stop.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, r := range q {
		r.done <- ErrClosed
	}
	c.stop()
	c.flights.Wait()
}
