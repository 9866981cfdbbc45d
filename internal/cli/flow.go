package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/tasks"
)

func newFlowCmd(cf *cloudFlags) *cobra.Command {
	c := &cobra.Command{Use: "flow", Short: "Run ready-made OpenStack flows that revert everything they made on failure"}
	run := &cobra.Command{Use: "run FLOW", Short: "Run a ready-made flow with live progress of each task (see 'ostask flow list')"}
	var storeFlag string
	for _, d := range tasks.Flows() {
		run.AddCommand(newFlowRunCmd(cf, d, &storeFlag))
	}
	c.AddCommand(newFlowListCmd(), run, newFlowResumeCmd(cf, &storeFlag), newFlowRunsCmd(&storeFlag), newFlowShowCmd(&storeFlag))
	c.PersistentFlags().StringVar(&storeFlag, "store", "", storeUsage)
	// Registered here rather than in newRoot, which registers the cloud
	// flags of "server" and "volume" by name.
	cf.register(c)
	return c
}

// flagName is the command-line flag of a flow parameter.
func flagName(param string) string { return strings.ReplaceAll(param, "_", "-") }

func newFlowListCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the ready-made flows and their parameters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			defs := tasks.Flows()
			if asJSON {
				type param struct {
					Name     string `json:"name"`
					Flag     string `json:"flag"`
					Kind     string `json:"kind"`
					Help     string `json:"help"`
					Default  any    `json:"default,omitempty"`
					Required bool   `json:"required"`
				}
				type def struct {
					Name     string   `json:"name"`
					Help     string   `json:"help"`
					Params   []param  `json:"params"`
					Provides []string `json:"provides,omitempty"`
				}
				var list []def
				for _, d := range defs {
					jd := def{Name: d.Name, Help: d.Help, Provides: d.Provides}
					for _, p := range d.Params {
						jd.Params = append(jd.Params, param{Name: p.Name, Flag: "--" + flagName(p.Name), Kind: string(p.Kind),
							Help: p.Help, Default: p.Default, Required: p.Default == nil})
					}
					list = append(list, jd)
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			for i, d := range defs {
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprintf(out, "%s\n  %s\n", d.Name, d.Help)
				for _, p := range d.Params {
					dflt := "required"
					if p.Default != nil {
						dflt = fmt.Sprintf("default %v", p.Default)
					}
					fmt.Fprintf(out, "    --%-20s %-8s %s (%s)\n", flagName(p.Name), p.Kind, p.Help, dflt)
				}
				if len(d.Provides) > 0 {
					fmt.Fprintf(out, "  provides: %s\n", strings.Join(d.Provides, ", "))
				}
			}
			fmt.Fprintln(out, "\nEvery flow also takes --run-id (re-running with the same id adopts what an earlier run made),\n--retries, --timeout and --json; run 'ostask flow run FLOW --help'.")
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the flows as JSON")
	return c
}

// flowRunFlags are the flags every flow run takes.
type flowRunFlags struct {
	runID   string
	retries int
	timeout time.Duration
	json    bool
	resume  string // the command that re-runs this run (same --run-id)
}

func newFlowRunCmd(cf *cloudFlags, d tasks.Definition, storeFlag *string) *cobra.Command {
	var rf flowRunFlags
	strs := map[string]*string{}
	ints := map[string]*int{}
	c := &cobra.Command{
		Use:   d.Name,
		Short: d.Help,
		Long: d.Help + `.

The run is recorded in a store (--store; by default a SQLite file under
the state directory) before each step: if the process is interrupted or
killed, 'ostask flow resume RUN' continues it where it stopped, in this
process or another, without redoing or duplicating what was done. The run
id (printed at the start; --run-id to choose it) also names everything the
run makes: with --store none, running the same command again with --run-id
RUN adopts what an earlier run made instead of making it twice. On
failure, every task that ran is reverted.

With --json the output is JSON lines (NDJSON), one object per line:
  {"event":"start","flow":...,"run_id":...,"resume":"ostask flow run ... --run-id ..."}
  {"event":"task","name":...,"state":"RUNNING"|"SUCCESS"|"FAILURE"|"REVERTED"|...,"id":...,"error":...,"seconds":...}
  {"event":"end","flow":...,"run_id":...,"state":...,"error":...,"tasks":[...],"values":{...}}
The first line is written before any call to the cloud.`,
		Example: flowExample(d),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRetries(rf.retries); err != nil {
				return err
			}
			if rf.timeout <= 0 {
				return usageError("--timeout must be positive, got %s", rf.timeout)
			}
			for _, p := range d.Params {
				if p.Kind == tasks.ParamNetwork {
					if _, err := parseNetworks(*strs[p.Name]); err != nil {
						return err
					}
				}
			}
			generated := rf.runID == ""
			if generated {
				rf.runID = uuid.NewString()
			}
			ctx := cmd.Context()
			s, err := cf.connect(ctx, ops.Config{})
			if err != nil {
				return err
			}
			defer s.Close()
			values := map[string]any{tasks.RunID: rf.runID}
			for _, p := range d.Params {
				if p.Kind == tasks.ParamInt {
					values[p.Name] = *ints[p.Name]
					continue
				}
				v := *strs[p.Name]
				switch p.Kind {
				case tasks.ParamFlavor:
					v, err = resolveFlavor(ctx, s.cloud, v)
				case tasks.ParamImage:
					v, err = resolveImage(ctx, s.cloud, v)
				case tasks.ParamServer:
					v, err = resolveServer(ctx, s.cloud, v)
				}
				if err != nil {
					return err
				}
				values[p.Name] = v
			}
			topts := []tasks.Option{tasks.WithRetries(rf.retries), tasks.WithTimeout(rf.timeout)}
			f, values, err := d.Prepare(s.cloud, values, topts...)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			url, err := storeURL(*storeFlag)
			if err != nil {
				return err
			}
			db, err := openStore(ctx, url, store.WithSecrets(s.secrets...))
			if err != nil {
				return err
			}
			var e *engine.Engine
			if db == nil {
				rf.resume = resumeWith(argsOf(ctx), "--run-id", rf.runID)
				c, err := flow.Compile(f, flow.WithInputs(keysOf(values)...))
				if err != nil {
					return err
				}
				if e, err = engine.NewCompiled(c, engine.Parallel(0), engine.WithStore(values)); err != nil {
					return err
				}
			} else {
				defer db.Close()
				rf.resume = flowResumeCommand(rf.runID, *storeFlag)
				reg := &store.Registry{}
				if err := tasks.Register(reg, s.cloud, topts...); err != nil {
					return err
				}
				e, _, err = db.Start(ctx, reg, store.NewRun{ID: rf.runID, Flow: d.Name, Version: tasks.FlowsVersion, Params: values},
					engine.Parallel(0))
				if errors.Is(err, store.ErrExists) {
					return usageError("run %s is already recorded in %s; continue it with: %s", rf.runID, redactURL(url), rf.resume)
				}
				if err != nil {
					return err
				}
			}
			if !rf.json && generated {
				what := "adopt what it made instead of making more"
				if db != nil {
					what = "continue it"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "ostask: flow %s run id %s; if this run is cut short, run this to %s:\n  %s\n",
					d.Name, rf.runID, what, rf.resume)
			}
			errOut := cmd.ErrOrStderr()
			stop := warnMonitors(s.cloud.Stats, func(line string) { fmt.Fprintln(errOut, line) })
			defer stop()
			return runFlow(ctx, cmd.OutOrStdout(), e, rf, nil)
		},
	}
	c.Flags().StringVar(&rf.runID, "run-id", "", "id of this run (default: a new one); re-running with the same id adopts what an earlier run made")
	c.Flags().IntVar(&rf.retries, "retries", tasks.DefaultRetries, retriesUsage+" per create; a failed attempt's resource is deleted before the next")
	c.Flags().DurationVar(&rf.timeout, "timeout", 30*time.Minute, "give up waiting on each operation after this long")
	c.Flags().BoolVar(&rf.json, "json", false, "print events as JSON lines (NDJSON): first the run id and the resume command, then each task's state changes, last the report")
	var required []string
	for _, p := range d.Params {
		name := flagName(p.Name)
		usage := p.Help
		if p.Kind == tasks.ParamFlavor || p.Kind == tasks.ParamImage || p.Kind == tasks.ParamServer {
			usage += " (name or id)"
		}
		if p.Kind == tasks.ParamInt {
			dflt, _ := p.Default.(int)
			ints[p.Name] = c.Flags().Int(name, dflt, usage)
		} else {
			dflt, _ := p.Default.(string)
			strs[p.Name] = c.Flags().String(name, dflt, usage)
		}
		if p.Default == nil {
			required = append(required, name)
		}
	}
	if len(required) > 0 {
		requireFlags(c, required...)
	}
	return c
}

// taskReport is one task's outcome in the --json report.
type taskReport struct {
	Name     string   `json:"name"`
	State    string   `json:"state"`
	Provides []string `json:"provides,omitempty"`
	// ID is the resource id the task produced (kept after a revert, when
	// the resource has been deleted).
	ID      string  `json:"id,omitempty"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// flowReport is the --json output of a flow run.
type flowReport struct {
	Event  string            `json:"event"` // "end" (the last NDJSON line)
	Flow   string            `json:"flow"`
	RunID  string            `json:"run_id"`
	State  string            `json:"state"`
	Error  string            `json:"error,omitempty"`
	Tasks  []taskReport      `json:"tasks"`
	Values map[string]string `json:"values,omitempty"` // ids the flow produced, by value name, after success
}

// flowProgress is the engine listener that drives the display: one line
// per task with its state. On a terminal each task has a live line (mpb);
// elsewhere each state change prints a plain line; with --json each is a
// JSON line (a "task" event).
type flowProgress struct {
	out  io.Writer
	json *json.Encoder // --json: NDJSON events
	p    *mpb.Progress
	t0   time.Time

	mu     sync.Mutex
	order  []string
	tasks  map[string]*taskLine
	status map[string]string // the terminal's status text, read by decorators
}

type taskLine struct {
	rep   taskReport
	since time.Time
	run   time.Duration
	bar   *mpb.Bar
}

// taskEvent is a "task" line of flow run --json.
type taskEvent struct {
	Event string `json:"event"` // "task"
	taskReport
}

func newFlowProgress(ctx context.Context, out io.Writer, ndjson bool, c *flow.Compiled) *flowProgress {
	fp := &flowProgress{out: out, t0: time.Now(), tasks: map[string]*taskLine{}, status: map[string]string{}}
	if ndjson {
		fp.json = json.NewEncoder(out)
	} else if isTerminal(out) {
		fp.p = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithRefreshRate(150*time.Millisecond))
	}
	width := 0
	for _, n := range c.Nodes() {
		if n.Kind == flow.NodeTask {
			width = max(width, len(n.Name))
		}
	}
	for _, n := range c.Nodes() {
		if n.Kind != flow.NodeTask {
			continue
		}
		tl := &taskLine{rep: taskReport{Name: n.Name, State: flow.StatePending.String(), Provides: n.Provides}}
		fp.order = append(fp.order, n.Name)
		fp.tasks[n.Name] = tl
		fp.status[n.Name] = "PENDING"
		if fp.p != nil {
			name := n.Name
			tl.bar = fp.p.New(1, mpb.NopStyle(), mpb.PrependDecorators(
				decor.Name(fmt.Sprintf("  %-*s ", width, name)),
				decor.Any(func(decor.Statistics) string {
					fp.mu.Lock()
					defer fp.mu.Unlock()
					return fp.status[name]
				})))
		}
	}
	return fp
}

// OnEvent implements engine.Listener; it only formats and prints.
func (fp *flowProgress) OnEvent(ev engine.Event) {
	if ev.Atom == "" {
		return
	}
	fp.mu.Lock()
	tl, ok := fp.tasks[ev.Atom]
	if !ok {
		fp.mu.Unlock()
		return
	}
	if ev.From == flow.StateRunning || ev.From == flow.StateReverting {
		tl.run += ev.Elapsed
	}
	tl.rep.State = ev.To.String()
	tl.rep.Seconds = math.Round(tl.run.Seconds()*1000) / 1000
	if id, ok := ev.Result.(string); ok && ev.To == flow.StateSuccess {
		tl.rep.ID = id
	}
	line := ev.To.String()
	if tl.rep.ID != "" && len(tl.rep.Provides) == 1 {
		line += fmt.Sprintf(" %s=%s", tl.rep.Provides[0], tl.rep.ID)
	}
	if ev.Failure != nil {
		tl.rep.Error = oneLine(ev.Failure.Message)
		line += ": " + tl.rep.Error
	}
	if ev.To != flow.StateRunning && ev.To != flow.StateReverting {
		line += fmt.Sprintf(" (%s)", ev.Elapsed.Round(10*time.Millisecond))
	}
	fp.status[ev.Atom] = line
	defer fp.mu.Unlock()
	switch {
	case fp.json != nil:
		_ = fp.json.Encode(taskEvent{Event: "task", taskReport: tl.rep})
	case fp.p == nil:
		fmt.Fprintf(fp.out, "%s: %s\n", ev.Atom, line)
	}
}

// recorded shows the states a resumed run had reached.
func (fp *flowProgress) recorded(atoms []store.AtomInfo) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	for _, a := range atoms {
		tl, ok := fp.tasks[a.Name]
		if !ok {
			continue
		}
		tl.rep.State = a.State.String()
		// Like a live run's report, the id stays after a revert.
		if id, err := flow.As[string](a.Result); err == nil {
			tl.rep.ID = id
		}
		if a.Failure != nil {
			tl.rep.Error = oneLine(a.Failure.Message)
		}
		fp.status[a.Name] = tl.rep.State + " (recorded)"
	}
}

// finish ends the live display.
func (fp *flowProgress) finish() {
	if fp.p == nil {
		return
	}
	for _, name := range fp.order {
		// The bars are made with total 1, which arms completion: SetTotal
		// would be ignored, reaching the total completes them.
		fp.tasks[name].bar.SetCurrent(1)
	}
	fp.p.Wait()
}

func (fp *flowProgress) report() []taskReport {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	out := make([]taskReport, 0, len(fp.order))
	for _, name := range fp.order {
		out = append(out, fp.tasks[name].rep)
	}
	return out
}

// runFlow runs e with live progress and reports like the other commands:
// a plain summary line (or JSON), and an *ExitError with a one-line
// reason — the original failure first — when the flow did not succeed.
// recorded holds what a resumed run had done, to show from the start.
func runFlow(ctx context.Context, out io.Writer, e *engine.Engine, rf flowRunFlags, recorded []store.AtomInfo) error {
	c := e.Compiled()
	if rf.json {
		start := struct {
			Event  string `json:"event"`
			Flow   string `json:"flow"`
			RunID  string `json:"run_id"`
			Resume string `json:"resume"`
		}{"start", c.Name(), rf.runID, rf.resume}
		if err := json.NewEncoder(out).Encode(start); err != nil {
			return err
		}
	}
	fp := newFlowProgress(ctx, out, rf.json, c)
	fp.recorded(recorded)
	remove := e.AddListener(fp)
	defer remove()
	runErr := e.Run(ctx)
	fp.finish()
	rep := flowReport{Event: "end", Flow: c.Name(), RunID: rf.runID, State: e.State().String(), Tasks: fp.report()}
	if runErr != nil {
		rep.Error = oneLine(runErr.Error())
	} else {
		rep.Values = map[string]string{}
		for _, t := range rep.Tasks {
			if t.ID != "" && len(t.Provides) == 1 {
				rep.Values[t.Provides[0]] = t.ID
			}
		}
	}
	if rf.json {
		if err := json.NewEncoder(out).Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "flow %s %s (run id %s)\n", rep.Flow, rep.State, rep.RunID)
	}
	switch {
	case runErr == nil:
		return nil
	case errors.Is(runErr, engine.ErrSuspended):
		return &interruptError{msg: fmt.Sprintf("flow %s interrupted; to continue, run: %s", c.Name(), rf.resume)}
	case errors.Is(runErr, engine.ErrStorage):
		return &ExitError{Code: 1, Err: fmt.Errorf("%s; the run stays as last recorded: fix the store, then run: %s", rep.Error, rf.resume)}
	}
	return &ExitError{Code: 1, Err: errors.New(rep.Error)}
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// flowExample is the --help example of a ready-made flow: its required
// parameters, with values that exist on cloudsim.
func flowExample(d tasks.Definition) string {
	args := []string{"ostask", "flow", "run", d.Name}
	onServer := false
	for _, p := range d.Params {
		onServer = onServer || (p.Kind == tasks.ParamServer && p.Default == nil)
	}
	for _, p := range d.Params {
		if p.Default != nil {
			continue
		}
		var v string
		switch p.Kind {
		case tasks.ParamFlavor:
			v = "m1.tiny"
			if onServer {
				v = "m1.small" // a change from the server's m1.tiny
			}
		case tasks.ParamImage:
			v = cloudsim.CirrosImageName
		case tasks.ParamServer:
			v = "web"
		case tasks.ParamInt:
			v = "1"
		default:
			v = "web"
			if onServer {
				v = "web-new"
			}
		}
		args = append(args, "--"+flagName(p.Name), v)
	}
	for _, p := range d.Params {
		if p.Kind == tasks.ParamNetwork {
			args = append(args, "--"+flagName(p.Name), "none")
		}
	}
	line := strings.Join(args, " ")
	if onServer {
		// The flow acts on a server that must exist first.
		return simNote + "  ostask server create web --flavor m1.tiny --image " + cloudsim.CirrosImageName + " --network none\n  " + line
	}
	return "  " + line + " --sim\n  " + line + " --json --sim"
}
