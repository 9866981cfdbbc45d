package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/tasks"
)

// flowResumeCommand is the command that continues a recorded run.
func flowResumeCommand(id, storeFlag string) string {
	q := []string{"ostask", "flow", "resume", shellQuote(id)}
	if storeFlag != "" {
		q = append(q, "--store", shellQuote(redactURL(storeFlag)))
	}
	return strings.Join(q, " ")
}

// storeError turns the store's refusals into exit codes: an unknown run,
// flow or version is bad input (2); the rest are failures (1).
func storeError(err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnknownFlow) {
		return &ExitError{Code: 2, Err: err}
	}
	return err
}

// openStoreFlag opens the store of --store, which must not be none.
func openStoreFlag(ctx context.Context, storeFlag string, opts ...store.Option) (*store.DB, error) {
	if storeFlag == "none" {
		return nil, usageError("--store none records nothing: name a store")
	}
	url, err := storeURL(storeFlag)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, url, opts...)
}

func newFlowResumeCmd(cf *cloudFlags, storeFlag *string) *cobra.Command {
	var rf flowRunFlags
	c := &cobra.Command{
		Use:   "resume RUN",
		Short: "Continue a recorded flow run that was interrupted or killed",
		Long: `Continue a flow run recorded in the store (see 'ostask flow runs'): the
tasks that succeeded keep their results, a task that was running runs
again and adopts what it had made (its idempotency key), and a run that was
reverting goes on reverting. The run is taken over with a new ownership
epoch: a process still working on it (thought dead, only paused) is
stopped at its next write. A run of a flow or version this ostask does not
know is refused, and left as it is.`,
		Example: simNote + "  ostask flow run boot-from-volume --name web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none --run-id web-1   # killed halfway, say\n  ostask flow resume web-1\n  ostask flow resume web-1 --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRetries(rf.retries); err != nil {
				return err
			}
			if rf.timeout <= 0 {
				return usageError("--timeout must be positive, got %s", rf.timeout)
			}
			ctx := cmd.Context()
			rf.runID = args[0]
			rf.resume = flowResumeCommand(rf.runID, *storeFlag)
			db, err := openStoreFlag(ctx, *storeFlag)
			if err != nil {
				return err
			}
			defer db.Close()
			// Refuse an unknown run before dialling the cloud.
			if _, err := db.Get(ctx, rf.runID); err != nil {
				return storeError(err)
			}
			s, err := cf.connect(ctx, ops.Config{})
			if err != nil {
				return err
			}
			defer s.Close()
			db.AddSecrets(s.secrets...)
			reg := &store.Registry{}
			if err := tasks.Register(reg, s.cloud, tasks.WithRetries(rf.retries), tasks.WithTimeout(rf.timeout)); err != nil {
				return err
			}
			_, atoms, err := db.Show(ctx, rf.runID)
			if err != nil {
				return storeError(err)
			}
			e, _, err := db.Resume(ctx, reg, rf.runID, "", engine.Parallel(0))
			if err != nil {
				return storeError(err)
			}
			return runFlow(ctx, cmd.OutOrStdout(), e, rf, atoms)
		},
	}
	c.Flags().IntVar(&rf.retries, "retries", tasks.DefaultRetries, retriesUsage+" per create; a failed attempt's resource is deleted before the next")
	c.Flags().DurationVar(&rf.timeout, "timeout", 30*time.Minute, "give up waiting on each operation after this long")
	c.Flags().BoolVar(&rf.json, "json", false, "print events as JSON lines (NDJSON), as 'flow run' does")
	return c
}

// runJSON is a run in 'flow runs --json' and 'flow show --json'.
type runJSON struct {
	ID      string                     `json:"id"`
	Flow    string                     `json:"flow"`
	Version string                     `json:"version"`
	State   string                     `json:"state"`
	Owner   string                     `json:"owner"`
	Epoch   int64                      `json:"epoch"`
	Created time.Time                  `json:"created"`
	Updated time.Time                  `json:"updated"`
	Params  map[string]json.RawMessage `json:"params,omitempty"`
	Atoms   []atomJSON                 `json:"atoms,omitempty"`
}

type atomJSON struct {
	Name          string          `json:"name"`
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	Started       *time.Time      `json:"started,omitempty"`
	Finished      *time.Time      `json:"finished,omitempty"`
	Seconds       float64         `json:"seconds,omitempty"`
	Result        json.RawMessage `json:"result,omitempty"`
	Failure       *flow.Failure   `json:"failure,omitempty"`
	RevertFailure *flow.Failure   `json:"revert_failure,omitempty"`
	Decision      string          `json:"decision,omitempty"`
}

func toRunJSON(r store.RunInfo) runJSON {
	return runJSON{ID: r.ID, Flow: r.Flow, Version: r.Version, State: r.State.String(), Owner: r.Owner,
		Epoch: r.Epoch, Created: r.Created, Updated: r.Updated}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func newFlowRunsCmd(storeFlag *string) *cobra.Command {
	var f store.RunFilter
	var asJSON bool
	c := &cobra.Command{
		Use:     "runs",
		Short:   "List the flow runs recorded in the store, newest first",
		Example: "  ostask flow runs\n  ostask flow runs --state RUNNING --json\n  ostask flow runs --flow boot-from-volume --limit 10",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.State != "" {
				st, err := flow.ParseState(f.State)
				if err != nil {
					return usageError("--state: %v", err)
				}
				f.State = st.String()
			}
			ctx := cmd.Context()
			db, err := openStoreFlag(ctx, *storeFlag)
			if err != nil {
				return err
			}
			defer db.Close()
			runs, err := db.List(ctx, f)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				list := make([]runJSON, 0, len(runs))
				for _, r := range runs {
					list = append(list, toRunJSON(r))
				}
				return encodeJSON(out, list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tFLOW\tVERSION\tSTATE\tOWNER\tCREATED\tUPDATED")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Flow, r.Version, r.State, r.Owner,
					r.Created.Local().Format(time.DateTime), r.Updated.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&f.Flow, "flow", "", "only runs of this flow")
	c.Flags().StringVar(&f.State, "state", "", "only runs in this state (RUNNING, SUSPENDED, SUCCESS, REVERTED, ...)")
	c.Flags().IntVar(&f.Limit, "limit", 0, "at most this many runs (0: all)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return c
}

func encodeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newFlowShowCmd(storeFlag *string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a recorded flow run: each task's state, attempts, timings, result or failure",
		Long: `Show a flow run recorded in the store: its flow, state, owner and
parameters, and for each task its state, how many times it started, when
it started and finished, and its result, or its failure as the cloud
reported it (fault message and code, request id).`,
		Example: simNote + "  ostask flow run boot-from-volume --name web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none --run-id web-2\n  ostask flow show web-2\n  ostask flow show web-2 --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := openStoreFlag(ctx, *storeFlag)
			if err != nil {
				return err
			}
			defer db.Close()
			info, atoms, err := db.Show(ctx, args[0])
			if err != nil {
				return storeError(err)
			}
			rj := toRunJSON(info)
			rj.Params = info.Params
			for _, a := range atoms {
				aj := atomJSON{Name: a.Name, State: a.State.String(), Attempts: a.Attempts, Started: timePtr(a.Started),
					Finished: timePtr(a.Finished), Result: a.Result, Failure: a.Failure, RevertFailure: a.RevertFailure,
					Decision: a.Decision.String()}
				if !a.Started.IsZero() && !a.Finished.IsZero() && a.Finished.After(a.Started) {
					aj.Seconds = a.Finished.Sub(a.Started).Round(time.Millisecond).Seconds()
				}
				rj.Atoms = append(rj.Atoms, aj)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return encodeJSON(out, rj)
			}
			fmt.Fprintf(out, "run %s: flow %s version %s %s (owner %s, epoch %d)\n", rj.ID, rj.Flow, rj.Version, rj.State, rj.Owner, rj.Epoch)
			fmt.Fprintf(out, "created %s, updated %s\n", info.Created.Local().Format(time.DateTime), info.Updated.Local().Format(time.DateTime))
			if len(info.Params) > 0 {
				b, _ := json.Marshal(info.Params)
				fmt.Fprintf(out, "parameters %s\n", b)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nTASK\tSTATE\tATTEMPTS\tSTARTED\tSECONDS\tRESULT / FAILURE")
			for _, a := range rj.Atoms {
				started := "-"
				if a.Started != nil {
					started = a.Started.Local().Format(time.TimeOnly)
				}
				detail := string(a.Result)
				if a.Failure != nil {
					detail = "failed: " + oneLine(a.Failure.Message)
				}
				if a.RevertFailure != nil {
					detail += "; revert failed: " + oneLine(a.RevertFailure.Message)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.3f\t%s\n", a.Name, a.State, a.Attempts, started, a.Seconds, detail)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the run as JSON")
	return c
}

func newMigrateCmd() *cobra.Command {
	var storeFlag string
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Bring a flow store's schema up to this version of ostask",
		Long: `Apply the schema migrations this ostask carries to a store (every
command that opens a store does so too). A store migrated by a newer
ostask is refused: upgrade ostask instead.`,
		Example: "  ostask migrate   # the default store\n  # ostask migrate --store postgres://ostask@db.example/ostask",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := openStoreFlag(cmd.Context(), storeFlag)
			if err != nil {
				return err
			}
			defer db.Close()
			from, to := db.Migrated()
			if from == to {
				fmt.Fprintf(cmd.OutOrStdout(), "store schema at version %d: up to date\n", to)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "store schema migrated from version %d to %d\n", from, to)
			}
			return nil
		},
	}
	c.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	return c
}
