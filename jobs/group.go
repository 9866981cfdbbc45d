package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultWriteGroup bounds how many task writes ready at the same moment
// share one transaction.
const DefaultWriteGroup = 128

// writeReq is one task write for the group writer.
type writeReq struct {
	fn   func(ctx context.Context, t tx, change int64) error
	done chan error
}

// inGroup runs fn in a transaction shared with the other task writes of
// this process that are ready at the same moment (group commit: the many
// tasks a worker runs each write their events, claims and finishes in
// one transaction and one flush, not one each). It returns once that
// transaction committed, with fn's error. fn must run its statements
// with the context it is given, and may report a refused guard (no rows:
// fenced, or the task changed) only from its first statement, before it
// wrote anything: such a write is left out and the others commit. Any
// other error fails the group, whose writes are then made one by one,
// so that one bad write fails only itself.
func (q *Queue) inGroup(ctx context.Context, fn func(ctx context.Context, t tx, change int64) error) error {
	r := &writeReq{fn: fn, done: make(chan error, 1)}
	select {
	case q.writes <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-q.done:
		return ErrClosed
	}
	// Handed over: committed or not whatever ctx does.
	return <-r.done
}

func (q *Queue) writer() {
	defer q.wg.Done()
	for {
		var first *writeReq
		select {
		case first = <-q.writes:
		case <-q.done:
			return
		}
		batch := []*writeReq{first}
	drain:
		for len(batch) < DefaultWriteGroup {
			select {
			case r := <-q.writes:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		q.writeGroup(batch)
	}
}

func (q *Queue) writeGroup(batch []*writeReq) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs, err := q.tryGroup(ctx, batch)
	if err != nil && len(batch) > 1 {
		// One bad write fails only itself: each alone.
		for _, r := range batch {
			q.writeGroup([]*writeReq{r})
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.done <- err
			continue
		}
		r.done <- errs[i]
	}
}

// countingTx counts the statements of one write in a shared transaction,
// and keeps the refusal of its guard when the guard was held back
// (laterRow) and turned out to find nothing.
type countingTx struct {
	tx
	n       int
	refused error
	done    bool // the write's fn returned: n is final
}

func (c *countingTx) exec(ctx context.Context, s string, args ...any) (int64, error) {
	n, err := c.tx.exec(ctx, s, args...)
	if err == nil {
		c.n++
	}
	return n, err
}

func (c *countingTx) query(ctx context.Context, s string, args ...any) (rows, error) {
	c.n++ // a query may write (RETURNING); count it whatever it returns
	return c.tx.query(ctx, s, args...)
}

func (c *countingTx) queryRow(ctx context.Context, s string, args ...any) row {
	return &countingRow{row: c.tx.queryRow(ctx, s, args...), c: c}
}

func (c *countingTx) later(ctx context.Context, s string, args ...any) {
	c.n++
	c.tx.later(ctx, s, args...)
}

// laterRow: a held-back guard that finds nothing refuses the write (the
// others go on) only when it is the write's only statement; otherwise
// what came after it was written with it, and the group fails (see
// tryGroup for a refusal seen before the write's fn returned).
func (c *countingTx) laterRow(ctx context.Context, scan func(row) error, s string, args ...any) {
	first := c.n == 0
	c.n++
	c.tx.laterRow(ctx, func(r row) error {
		err := scan(r)
		if !first || !refusal(err) || (c.done && c.n > 1) {
			return err
		}
		c.refused = err
		return nil
	}, s, args...)
}

type countingRow struct {
	row
	c *countingTx
}

func (r *countingRow) Scan(dst ...any) error {
	err := r.row.Scan(dst...)
	if err == nil {
		r.c.n++
	}
	return err
}

// refusal reports whether err is a guard that found nothing: no rows, or
// the task not found.
func refusal(err error) bool { return isNoRows(err) || errors.Is(err, ErrNotFound) }

// tryGroup runs the batch in one transaction: the errors of the writes
// left out (their guard, the first statement, found nothing), or err
// when the group failed.
func (q *Queue) tryGroup(ctx context.Context, batch []*writeReq) ([]error, error) {
	t, err := q.db.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer t.rollback(ctx)
	errs := make([]error, len(batch))
	cts := make([]*countingTx, len(batch))
	var change, step int64
	for i, r := range batch {
		if i == 0 || step != 0 {
			if change, step, err = q.db.takeChanges(ctx, t, 1); err != nil {
				return nil, err
			}
		}
		cts[i] = &countingTx{tx: t}
		err := r.fn(ctx, cts[i], change)
		cts[i].done = true
		if err == nil && cts[i].refused != nil && cts[i].n > 1 {
			// Its held-back guard found nothing and more of it was written.
			return nil, fmt.Errorf("jobs: a held-back guard found nothing: %w", cts[i].refused)
		}
		if err == nil {
			continue
		}
		if refusal(err) && cts[i].n == 0 {
			errs[i] = err // refused before writing: the others go on
			continue
		}
		return nil, err
	}
	if err := t.commit(ctx); err != nil {
		return nil, err
	}
	for i, ct := range cts {
		if ct != nil && ct.refused != nil && errs[i] == nil {
			errs[i] = ct.refused
		}
	}
	return errs, nil
}
