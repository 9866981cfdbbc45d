// Command taskflow benchmarks ostask's engine against OpenStack TaskFlow
// (python3-taskflow) on the same flow shapes and prints both side by side:
// throughput, µs per task, and the peak resident memory of the process that
// ran the shape (each shape runs in a fresh child process for both engines).
//
//	go run ./bench/taskflow [-budget 120s] [-python /usr/bin/python3] [-shapes linear-1000,graph-1000]
//
// TaskFlow runs each shape once, within a time budget: shapes whose estimate
// (extrapolated linearly from a smaller run of the same shape, which is
// optimistic for TaskFlow's quadratic engine) exceeds the budget are skipped,
// and a run that overruns it is killed; the output says so.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

//go:embed taskflow_shapes.py
var script []byte

// shape is one benchmark: a flow family and its size.
type shape struct {
	id     string
	family string // linear, unordered, graph, nested, revert
	n      int    // family parameter (tasks, or K for nested)
	tasks  int
	what   string
}

var shapes = []shape{
	{"linear-1000", "linear", 1000, 1000, "linear, serial"},
	{"linear-100000", "linear", 100000, 100000, "linear, serial"},
	{"unordered-1000", "unordered", 1000, 1000, "unordered, parallel(8)"},
	{"graph-1000", "graph", 1000, 1000, "graph chain via requires/provides, serial (compile+run)"},
	{"nested-6", "nested", 6, 60, "linear 6 × unordered-10, parallel(8)"},
	{"nested-20", "nested", 20, 200, "linear 20 × unordered-10, parallel(8)"},
	{"revert-100", "revert", 100, 100, "linear 100, task 50 fails, full revert, serial"},
}

// result is what a child process reports.
type result struct {
	Seconds       float64 `json:"seconds"`
	RevertSeconds float64 `json:"revert_seconds,omitempty"`
	Runs          int     `json:"runs,omitempty"`
	MaxRSSKB      int64   `json:"maxrss_kb"`
	skipped       string
}

func main() {
	child := flag.String("child", "", "internal: run one Go shape (family:n) and print its result")
	budget := flag.Duration("budget", 120*time.Second, "time budget per TaskFlow shape")
	python := flag.String("python", "/usr/bin/python3", "python interpreter with taskflow installed")
	only := flag.String("shapes", "", "comma-separated shape ids to run (default: all)")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := runAll(*python, *budget, *only); err != nil {
		fmt.Fprintln(os.Stderr, "taskflow bench:", err)
		os.Exit(1)
	}
}

func runAll(python string, budget time.Duration, only string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ostask-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	py := dir + "/taskflow_shapes.py"
	if err := os.WriteFile(py, script, 0o600); err != nil {
		return err
	}
	tfOK := exec.Command(python, "-c", "import taskflow").Run() == nil
	if !tfOK {
		fmt.Printf("TaskFlow is not importable by %s: only the Go side runs (apt-get install -y python3-taskflow)\n\n", python)
	}
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	perTask := map[string]float64{} // family -> TaskFlow seconds per task, for estimates
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "shape\ttasks\tengine\ttime\ttasks/s\tµs/task\tpeak RSS\trevert\tspeedup\t")
	for _, s := range shapes {
		if len(want) > 0 && !want[s.id] {
			continue
		}
		fmt.Fprintf(os.Stderr, "running %s ...\n", s.id)
		g, err := runProc(context.Background(), self, "-child", fmt.Sprintf("%s:%d", s.family, s.n))
		if err != nil {
			return fmt.Errorf("%s (go): %w", s.id, err)
		}
		var tf result
		switch {
		case !tfOK:
			tf.skipped = "taskflow missing"
		case perTask[s.family] > 0 && perTask[s.family]*float64(s.tasks) > budget.Seconds():
			tf.skipped = fmt.Sprintf("skipped: est. ≥ %.0fs > budget", perTask[s.family]*float64(s.tasks))
		default:
			ctx, cancel := context.WithTimeout(context.Background(), budget)
			tf, err = runProc(ctx, python, py, s.family, fmt.Sprint(s.n))
			cancel()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				tf.skipped = fmt.Sprintf("killed: over the %s budget", budget)
			} else if err != nil {
				return fmt.Errorf("%s (taskflow): %w", s.id, err)
			} else {
				perTask[s.family] = tf.Seconds / float64(s.tasks)
			}
		}
		row(w, s, "ostask", g, "")
		speed := ""
		if tf.skipped == "" {
			speed = fmt.Sprintf("%.0f×", tf.Seconds/g.Seconds)
			if s.family == "revert" {
				speed += fmt.Sprintf(" (revert %.0f×)", tf.RevertSeconds/g.RevertSeconds)
			}
		}
		row(w, s, "taskflow", tf, speed)
	}
	w.Flush()
	fmt.Println("\nostask times are the median of repeated runs in one process; TaskFlow runs once.")
	fmt.Println("time = build + compile + run; revert = from the failing task's error to REVERTED.")
	fmt.Println("peak RSS is the child process's maximum resident set (Go runtime or Python interpreter included).")
	return nil
}

func row(w *tabwriter.Writer, s shape, engine string, r result, speed string) {
	if r.skipped != "" {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t\t\t\t\t\t\n", s.id, s.tasks, engine, r.skipped)
		return
	}
	rev := ""
	if r.RevertSeconds > 0 {
		rev = dur(r.RevertSeconds)
	}
	fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%.0f\t%.2f\t%.1f MB\t%s\t%s\t\n", s.id, s.tasks, engine,
		dur(r.Seconds), float64(s.tasks)/r.Seconds, r.Seconds/float64(s.tasks)*1e6,
		float64(r.MaxRSSKB)/1024, rev, speed)
}

func dur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(time.Microsecond).String()
}

// runProc runs a child that prints one JSON result line, and adds its peak RSS.
func runProc(ctx context.Context, name string, args ...string) (result, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%w: %s", err, errb.String())
	}
	var r result
	if err := json.Unmarshal(lastLine(out.Bytes()), &r); err != nil {
		return result{}, fmt.Errorf("bad output %q: %w", out.String(), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSKB = ru.Maxrss
	}
	return r, nil
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}
