package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// maxLines is how many per-operation lines a terminal display shows; with
// more operations only the overall bars (and failures) are shown.
const maxLines = 25

// display shows live progress: on a terminal, one line per operation and
// an overall bar per phase (mpb); elsewhere, one plain line per finished
// operation. With quiet set (--json), it prints nothing.
type display struct {
	out   io.Writer
	tty   bool
	quiet bool
	p     *mpb.Progress
	mu    sync.Mutex // serialises plain output
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newDisplay(ctx context.Context, out io.Writer, quiet bool) *display {
	d := &display{out: out, tty: isTerminal(out), quiet: quiet}
	if d.tty && !quiet {
		d.p = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))
	}
	return d
}

// phase is an overall bar: done/total, failures, elapsed.
type phase struct {
	d       *display
	name    string
	bar     *mpb.Bar
	total   int
	done    atomic.Int64
	failed  atomic.Int64
	retried atomic.Int64
	lines   atomic.Int64
}

func (d *display) phase(name string, total int) *phase {
	ph := &phase{d: d, name: name, total: total}
	if d.p != nil {
		ph.bar = d.p.AddBar(int64(total),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-10s", name)), decor.CountersNoUnit(" %d/%d")),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				return fmt.Sprintf(" failed %d  retried %d", ph.failed.Load(), ph.retried.Load())
			}), decor.Elapsed(decor.ET_STYLE_GO, decor.WC{W: 6})))
	}
	return ph
}

// item is one operation's line.
type item struct {
	ph     *phase
	label  string
	start  time.Time
	bar    *mpb.Bar
	status atomic.Value // string
	took   atomic.Int64 // duration once finished
}

func (ph *phase) item(label string) *item {
	it := &item{ph: ph, label: label, start: time.Now()}
	it.status.Store("waiting")
	if ph.d.p != nil && ph.lines.Add(1) <= maxLines {
		it.bar = ph.d.p.New(1, mpb.NopStyle(), mpb.BarPriority(1<<20),
			mpb.PrependDecorators(decor.Name("  "+label+" ", decor.WC{W: 28, C: decor.DindentRight}),
				decor.Any(func(decor.Statistics) string {
					s := it.status.Load().(string)
					d := time.Duration(it.took.Load())
					if d == 0 {
						d = time.Since(it.start)
					}
					return fmt.Sprintf("%s (%s)", s, d.Round(100*time.Millisecond))
				})))
	}
	return it
}

// finish records the outcome of one operation.
func (it *item) finish(status string, attempts int, err error) {
	ph := it.ph
	if attempts > 1 {
		ph.retried.Add(1)
	}
	if err != nil {
		ph.failed.Add(1)
		status = "FAILED: " + err.Error()
	} else if attempts > 1 {
		status = fmt.Sprintf("%s after %d attempts", status, attempts)
	}
	it.took.Store(int64(time.Since(it.start)))
	ph.done.Add(1)
	if it.bar != nil {
		it.status.Store(status)
		it.bar.SetCurrent(1) // made with total 1: SetTotal would be ignored
	}
	if ph.bar != nil {
		ph.bar.Increment()
	}
	d := ph.d
	if d.quiet || (d.tty && it.bar != nil) {
		return
	}
	msg := fmt.Sprintf("%s %s: %s after %s", ph.name, it.label, status, time.Since(it.start).Round(10*time.Millisecond))
	if attempts > 1 {
		msg += fmt.Sprintf(" (%d attempts)", attempts)
	}
	if d.p != nil {
		if err != nil {
			_, _ = fmt.Fprintln(d.p, msg)
		}
		return
	}
	d.mu.Lock()
	fmt.Fprintln(d.out, msg)
	d.mu.Unlock()
}

// wait stops the display once every bar is complete.
func (d *display) wait() {
	if d.p != nil {
		d.p.Wait()
	}
}

// abort stops the display at once (on error or interrupt).
func (d *display) abort() {
	if d.p != nil {
		d.p.Shutdown()
	}
}
