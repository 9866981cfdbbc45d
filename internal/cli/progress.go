package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/cwriter"
	"github.com/vbauerster/mpb/v8/decor"
)

// maxLines is how many per-operation lines a terminal display shows; with
// more operations only the overall bars (and failures) are shown.
const maxLines = 25

// display shows live progress: on a terminal, one line per operation and
// an overall bar per phase (mpb); elsewhere, one plain line per accepted
// and per finished operation. With plain set (--json, whose progress goes
// to stderr), it never draws bars.
type display struct {
	out io.Writer
	tty bool
	p   *mpb.Progress
	mu  sync.Mutex // serialises plain output
}

// isTerminal reports a terminal that can show live lines: a character
// device with a known size. A pty with no size (0x0) would make mpb draw
// nothing at all, so it gets plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	width, height, err := cwriter.GetSize(int(f.Fd()))
	return err == nil && width > 0 && height > 0
}

func newDisplay(ctx context.Context, out io.Writer, plain bool) *display {
	d := &display{out: out, tty: !plain && isTerminal(out)}
	if d.tty {
		d.p = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))
	}
	return d
}

// println prints a plain line, or above the bars on a terminal.
func (d *display) println(msg string) {
	if d.p != nil {
		_, _ = fmt.Fprintln(d.p, msg)
		return
	}
	d.mu.Lock()
	fmt.Fprintln(d.out, msg)
	d.mu.Unlock()
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

// accepted shows that the cloud took the call.
func (it *item) accepted(id string, adopted bool) {
	s := "accepted, id " + id
	if adopted {
		s = "adopted " + id + " (made by an earlier run with this idempotency key)"
	}
	if it.bar != nil {
		it.status.Store(s + ", waiting")
		return
	}
	if it.ph.d.p == nil {
		it.ph.d.println(fmt.Sprintf("%s %s: %s", it.ph.name, it.label, s))
	}
}

// finish records the outcome of one operation of a command. Failure
// reasons are not shown here: the command prints each once, in full,
// when it ends.
func (it *item) finish(o outcome) {
	var s string
	switch o.Result {
	case resultSucceeded:
		s = o.Status
		if o.Adopted {
			s += " (adopted)"
		}
	case resultFailed:
		s = "FAILED"
		if len(o.Kept) > 0 {
			s += " (kept: " + strings.Join(o.Kept, " ") + ")"
		}
	default:
		s = o.Result
	}
	it.record(s, o.ID, o.Attempts, o.Result == resultFailed, o.Result == resultSucceeded || o.Result == resultFailed)
}

// done records the outcome of one of the demo's operations.
func (it *item) done(status string, attempts int, err error) {
	if err != nil {
		status = "FAILED: " + err.Error()
	}
	it.record(status, "", attempts, err != nil, true)
}

func (it *item) record(status, id string, attempts int, failed, timed bool) {
	ph := it.ph
	if attempts > 1 {
		ph.retried.Add(1)
		status = fmt.Sprintf("%s after %d attempts", status, attempts)
	}
	if id != "" {
		status += ", id " + id
	}
	if failed {
		ph.failed.Add(1)
	}
	took := time.Since(it.start)
	it.took.Store(int64(took))
	ph.done.Add(1)
	if it.bar != nil {
		it.status.Store(status)
		it.bar.SetCurrent(1) // made with total 1: SetTotal would be ignored
	}
	if ph.bar != nil {
		ph.bar.Increment()
	}
	d := ph.d
	if d.tty && it.bar != nil {
		return
	}
	msg := fmt.Sprintf("%s %s: %s", ph.name, it.label, status)
	if timed {
		msg += fmt.Sprintf(" (%s)", took.Round(10*time.Millisecond))
	}
	d.println(msg)
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
