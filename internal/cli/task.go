package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/service"
)

// urlEnv gives --url its default.
const urlEnv = "OSTASK_URL"

// defaultListen is where 'ostask serve' listens by default.
const defaultListen = "127.0.0.1:8080"

// defaultURL is where 'ostask serve' listens by default.
const defaultURL = "http://" + defaultListen

// taskFlags are the flags of every 'ostask task' command.
type taskFlags struct {
	url     string
	osCloud string
	json    bool
}

func newTaskCmd() *cobra.Command {
	tf := &taskFlags{}
	c := &cobra.Command{Use: "task", Short: "Create, watch and cancel tasks of an ostask service (ostask serve)",
		Long: `The task commands talk to an ostask service ('ostask serve'): they create tasks
(a background change in the cloud, run by the service's workers), follow their
events, list them and cancel them.

The service is --url (default $` + urlEnv + `, else ` + defaultURL + `). Its callers log in
to the cloud's Keystone as every other command does: --os-cloud / OS_CLOUD with
clouds.yaml, or the OS_* variables; the token says which project's tasks are
seen.`}
	c.PersistentFlags().StringVar(&tf.url, "url", "", "the service's URL (default $"+urlEnv+", else "+defaultURL+")")
	c.PersistentFlags().StringVar(&tf.osCloud, "os-cloud", "", "cloud name in clouds.yaml whose Keystone token to send (default $OS_CLOUD; else the OS_* variables)")
	c.PersistentFlags().BoolVar(&tf.json, "json", false, "print JSON on stdout (progress goes to stderr)")
	c.AddCommand(newTaskCreateCmd(tf), newTaskGetCmd(tf), newTaskListCmd(tf), newTaskEventsCmd(tf), newTaskCancelCmd(tf),
		newTaskKindsCmd(tf))
	return c
}

// client logs in to Keystone and returns a client of the service.
func (tf *taskFlags) client(ctx context.Context) (*service.Client, error) {
	u := tf.url
	if u == "" {
		u = os.Getenv(urlEnv)
	}
	if u == "" {
		u = defaultURL
	}
	name := tf.osCloud
	if name == "" {
		name = os.Getenv("OS_CLOUD")
	}
	auth, err := cloudAuth(name, "")
	if err != nil {
		return nil, err
	}
	pc, err := openstack.NewClient(auth.Options.IdentityEndpoint)
	if err != nil {
		return nil, &ExitError{Code: 2, Err: fmt.Errorf("auth url %q: %w", auth.Options.IdentityEndpoint, err)}
	}
	if auth.TLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = auth.TLS
		pc.HTTPClient = http.Client{Transport: tr}
	}
	auth.Options.AllowReauth = true
	if err := openstack.Authenticate(ctx, pc, auth.Options); err != nil {
		return nil, fmt.Errorf("log in at %s: %s", auth.Options.IdentityEndpoint, describe(err))
	}
	c, err := service.NewClient(u, func(context.Context) (string, error) { return pc.Token(), nil })
	if err != nil {
		return nil, usageError("--url: %v", err)
	}
	return c, nil
}

// apiError makes a service's refusal an exit: bad input is 2, the rest 1.
func apiError(err error) error {
	var e *service.Error
	if errors.As(err, &e) && e.Status == http.StatusBadRequest {
		return &ExitError{Code: 2, Err: err}
	}
	return err
}

func newTaskCreateCmd(tf *taskFlags) *cobra.Command {
	var (
		params  []string
		raw     string
		timeout time.Duration
		retries int
		key     string
		noWait  bool
	)
	c := &cobra.Command{Use: "create KIND [--param NAME=VALUE]...", Short: "Create a task and follow it until it ends",
		Long: `Create a task of KIND ('ostask task kinds' lists them with their parameters) and
follow its events until it ends. The exit code is 0 when it succeeded, 1 when it
failed, was reverted or cancelled. --no-wait returns once the service accepted it.`,
		Example: `  ostask serve --sim --clouds-yaml /tmp/ostask-serve/clouds.yaml &   # then, with the variables it prints exported:
  ostask task create server.create --param name=web-1 --param flavor=1 --param image=0c5e9a2f-7b1d-4e3a-9f6c-2d8b4a7e1c05   # cirros, in cloudsim
  ostask task create noop --no-wait --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 || retries < 0 {
				return usageError("--timeout and --retries must not be negative")
			}
			ctx := cmd.Context()
			cl, err := tf.client(ctx)
			if err != nil {
				return err
			}
			var schema json.RawMessage
			if len(params) > 0 {
				// The kind's schema says which --param values are strings.
				ks, err := cl.Kinds(ctx)
				if err != nil {
					return apiError(err)
				}
				for _, k := range ks {
					if k.Name == args[0] {
						schema = k.Schema
					}
				}
			}
			p, err := taskParams(raw, params, schema)
			if err != nil {
				return err
			}
			req := service.CreateRequest{Kind: args[0], Params: p, Options: jobs.Options{Timeout: jobs.Duration(timeout), Retries: retries}}
			t, replayed, err := cl.Create(ctx, req, key)
			if err != nil {
				return apiError(err)
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if noWait {
				if tf.json {
					return writeJSONLine(out, t)
				}
				note := ""
				if replayed {
					note = " (an earlier request with this idempotency key)"
				}
				fmt.Fprintf(out, "task %s %s%s\n", t.ID, t.Status, note)
				return nil
			}
			return followTask(ctx, cl, t, replayed, tf.json, out, errOut)
		}}
	c.Flags().StringArrayVar(&params, "param", nil, "a parameter NAME=VALUE (a string where the kind's schema wants one, else JSON if it parses as JSON); repeatable")
	c.Flags().StringVar(&raw, "params", "", "the parameters as a JSON object, or @FILE (--param adds to them)")
	c.Flags().DurationVar(&timeout, "timeout", 0, "bound on the task's run (default: the service's)")
	c.Flags().IntVar(&retries, "retries", 0, "attempts of each OpenStack operation of the task (default: the service's)")
	c.Flags().StringVar(&key, "idempotency-key", "", "repeating the command with the same key returns the first task instead of making another")
	c.Flags().BoolVar(&noWait, "no-wait", false, "return once the service accepted the task")
	return c
}

// taskParams merges --params and --param into a JSON object. A --param
// value is a string where schema's property is a string, else JSON if it
// parses as JSON (numbers, booleans, lists), else a string.
func taskParams(raw string, params []string, schema json.RawMessage) (json.RawMessage, error) {
	var props struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(schema, &props) // no schema: every value by its look
	obj := map[string]json.RawMessage{}
	if strings.HasPrefix(raw, "@") {
		data, err := os.ReadFile(raw[1:])
		if err != nil {
			return nil, usageError("--params: %v", err)
		}
		raw = string(data)
	}
	if strings.TrimSpace(raw) != "" {
		if err := json.Unmarshal([]byte(raw), &obj); err != nil {
			return nil, usageError("--params must be a JSON object: %v", err)
		}
	}
	for _, p := range params {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, usageError("--param %q is not NAME=VALUE", p)
		}
		if props.Properties[name].Type != "string" && json.Valid([]byte(value)) {
			obj[name] = json.RawMessage(value)
		} else {
			s, _ := json.Marshal(value)
			obj[name] = s
		}
	}
	return json.Marshal(obj)
}

// followTask shows a task's events until it ends, then its outcome; with
// asJSON the final task goes to stdout and the progress to stderr. A task
// that did not succeed is exit code 1.
func followTask(ctx context.Context, cl *service.Client, t jobs.Task, replayed, asJSON bool, out, errOut io.Writer) error {
	progressOut := out
	if asJSON {
		progressOut = errOut
	}
	d := newDisplay(ctx, progressOut, asJSON)
	ph := d.phase("task", 1)
	it := ph.item(t.Kind)
	it.accepted(t.ID, replayed)
	final, err := cl.FollowEvents(ctx, t.ID, 0, func(ev jobs.Event) error {
		line := eventLine(ev)
		if it.bar != nil {
			it.status.Store(line)
			return nil
		}
		d.println(fmt.Sprintf("task %s: %s", t.Kind, line))
		return nil
	})
	if err != nil {
		d.abort()
		if ctx.Err() != nil {
			return fmt.Errorf("stopped following task %s (it goes on in the service; 'ostask task get %s'): %w", t.ID, t.ID, ctx.Err())
		}
		return err
	}
	it.record(string(final.Status), final.ID, final.Attempts, final.Status != jobs.Succeeded, true)
	d.wait()
	if asJSON {
		if err := writeJSONLine(out, final); err != nil {
			return err
		}
	} else {
		printTask(out, final)
	}
	if final.Status != jobs.Succeeded {
		return &ExitError{Code: 1, Err: fmt.Errorf("task %s %s%s", final.ID, final.Status, errorSuffix(final.Error))}
	}
	return nil
}

func errorSuffix(e *jobs.Error) string {
	if e == nil {
		return ""
	}
	return ": " + describeTaskError(e)
}

// describeTaskError is a task's error on one line: the message, the
// step, the cloud's fault, code and request id.
func describeTaskError(e *jobs.Error) string {
	s := e.Message
	var extra []string
	if e.Step != "" {
		extra = append(extra, "step "+e.Step)
	}
	if e.Fault != "" && !strings.Contains(s, e.Fault) {
		extra = append(extra, "fault: "+e.Fault)
	}
	if e.Code != 0 {
		extra = append(extra, fmt.Sprintf("code %d", e.Code))
	}
	if e.RequestID != "" {
		extra = append(extra, "request "+e.RequestID)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return oneLine(s)
}

// eventLine is one event for people.
func eventLine(ev jobs.Event) string {
	var b strings.Builder
	if ev.Step != "" {
		b.WriteString("step " + ev.Step + ": ")
	} else {
		b.WriteString("task ")
	}
	if ev.From != "" {
		b.WriteString(ev.From + " -> ")
	}
	b.WriteString(ev.To)
	if ev.Elapsed > 0 {
		fmt.Fprintf(&b, " (after %s)", time.Duration(ev.Elapsed).Round(time.Millisecond))
	}
	if ev.Attempt > 1 {
		fmt.Fprintf(&b, ", attempt %d", ev.Attempt)
	}
	if ev.Error != nil {
		b.WriteString(": " + describeTaskError(ev.Error))
	}
	return b.String()
}

func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// printTask shows a task for people.
func printTask(w io.Writer, t jobs.Task) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("id", t.ID)
	row("kind", t.Kind)
	row("status", string(t.Status))
	row("project", t.Project)
	row("params", string(t.Params))
	prog := fmt.Sprintf("%d/%d steps", t.Progress.Done, t.Progress.Total)
	if t.Progress.Current != "" {
		prog += ", running " + t.Progress.Current
	}
	row("progress", prog)
	keys := make([]string, 0, len(t.Result))
	for k := range t.Result {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row("result."+k, string(t.Result[k]))
	}
	for _, r := range t.Resources {
		row("resource", r.Type+"/"+r.ID)
	}
	if t.Error != nil {
		row("error", describeTaskError(t.Error))
	}
	row("attempts", fmt.Sprint(t.Attempts))
	row("worker", t.Worker)
	row("created", t.CreatedAt.Format(time.RFC3339))
	if t.StartedAt != nil {
		row("started", t.StartedAt.Format(time.RFC3339))
	}
	if t.FinishedAt != nil {
		row("finished", fmt.Sprintf("%s (%s)", t.FinishedAt.Format(time.RFC3339), t.FinishedAt.Sub(t.CreatedAt).Round(time.Millisecond)))
	}
	if t.CancelRequested {
		row("cancel", "requested")
	}
	_ = tw.Flush()
}

func newTaskGetCmd(tf *taskFlags) *cobra.Command {
	return &cobra.Command{Use: "get TASK", Short: "Show a task: status, progress, result, error", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := tf.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := cl.Get(cmd.Context(), args[0])
			if err != nil {
				return apiError(err)
			}
			if tf.json {
				return writeJSONLine(cmd.OutOrStdout(), t)
			}
			printTask(cmd.OutOrStdout(), t)
			return nil
		}}
}

func newTaskListCmd(tf *taskFlags) *cobra.Command {
	var (
		o      service.ListOptions
		status string
		all    bool
	)
	c := &cobra.Command{Use: "list", Short: "List tasks, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if status != "" {
				st, err := jobs.ParseStatus(status)
				if err != nil {
					return usageError("--status: %v", err)
				}
				o.Status = st
			}
			ctx := cmd.Context()
			cl, err := tf.client(ctx)
			if err != nil {
				return err
			}
			var tasks []jobs.Task
			var next string
			for {
				p, err := cl.List(ctx, o)
				if err != nil {
					return apiError(err)
				}
				tasks = append(tasks, p.Tasks...)
				next = p.Next
				if !all || next == "" {
					break
				}
				o.Marker = next
			}
			out := cmd.OutOrStdout()
			if tf.json {
				if tasks == nil {
					tasks = []jobs.Task{}
				}
				return writeJSONLine(out, jobs.Page{Tasks: tasks, Next: next})
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tPROGRESS\tCREATED")
			for _, t := range tasks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", t.ID, t.Kind, t.Status, t.Progress.Done, t.Progress.Total,
					t.CreatedAt.Local().Format("2006-01-02 15:04:05"))
			}
			_ = tw.Flush()
			if next != "" {
				fmt.Fprintf(out, "more: --marker %s (or --all)\n", next)
			}
			return nil
		}}
	c.Flags().StringVar(&o.Kind, "kind", "", "only tasks of this kind")
	c.Flags().StringVar(&status, "status", "", "only tasks in this status (queued, running, reverting, succeeded, failed, reverted, cancelled)")
	c.Flags().StringVar(&o.Resource, "resource", "", "only tasks that made or acted on this resource (an id, or type/id)")
	c.Flags().IntVar(&o.Limit, "limit", 0, "tasks per page (default: the service's, 50)")
	c.Flags().StringVar(&o.Marker, "marker", "", "start after this task (the previous page's last)")
	c.Flags().BoolVar(&all, "all", false, "follow the next links to the last page")
	return c
}

func newTaskEventsCmd(tf *taskFlags) *cobra.Command {
	var follow bool
	c := &cobra.Command{Use: "events TASK", Short: "Show a task's events (--follow: until it ends)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := tf.client(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			show := func(ev jobs.Event) error {
				if tf.json {
					return writeJSONLine(out, ev)
				}
				_, err := fmt.Fprintf(out, "%3d  %s  %s\n", ev.Seq, ev.Time.Local().Format("15:04:05.000"), eventLine(ev))
				return err
			}
			if !follow {
				evs, err := cl.Events(ctx, args[0], 0)
				if err != nil {
					return apiError(err)
				}
				for _, ev := range evs {
					if err := show(ev); err != nil {
						return err
					}
				}
				return nil
			}
			final, err := cl.FollowEvents(ctx, args[0], 0, show)
			if err != nil {
				return apiError(err)
			}
			if !tf.json {
				fmt.Fprintf(out, "task %s %s%s\n", final.ID, final.Status, errorSuffix(final.Error))
			}
			return nil
		}}
	c.Flags().BoolVar(&follow, "follow", false, "stream new events until the task ends (resumes after a cut connection)")
	return c
}

func newTaskCancelCmd(tf *taskFlags) *cobra.Command {
	var wait bool
	c := &cobra.Command{Use: "cancel TASK", Short: "Cancel a task: a queued one never runs, a running one stops and reverts what it did",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := tf.client(ctx)
			if err != nil {
				return err
			}
			t, err := cl.Cancel(ctx, args[0])
			if err != nil {
				return apiError(err)
			}
			if wait && !t.Status.Final() {
				err := followTask(ctx, cl, t, false, tf.json, cmd.OutOrStdout(), cmd.ErrOrStderr())
				var ee *ExitError
				if errors.As(err, &ee) {
					if ft, gerr := cl.Get(ctx, t.ID); gerr == nil && ft.Status == jobs.Cancelled {
						return nil // what was asked for
					}
				}
				return err
			}
			if tf.json {
				return writeJSONLine(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "task %s %s (cancel requested)\n", t.ID, t.Status)
			return nil
		}}
	c.Flags().BoolVar(&wait, "wait", false, "follow the task until it ended (cancelled once what it did is reverted)")
	return c
}

func newTaskKindsCmd(tf *taskFlags) *cobra.Command {
	return &cobra.Command{Use: "kinds", Short: "List the kinds of task and their parameters", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := tf.client(cmd.Context())
			if err != nil {
				return err
			}
			ks, err := cl.Kinds(cmd.Context())
			if err != nil {
				return apiError(err)
			}
			out := cmd.OutOrStdout()
			if tf.json {
				return writeJSONLine(out, map[string][]jobs.Kind{"kinds": ks})
			}
			for _, k := range ks {
				fmt.Fprintf(out, "%s\n  %s\n", k.Name, k.Help)
				var schema struct {
					Required   []string `json:"required"`
					Properties map[string]struct {
						Type        any    `json:"type"`
						Description string `json:"description"`
					} `json:"properties"`
				}
				_ = json.Unmarshal(k.Schema, &schema)
				names := make([]string, 0, len(schema.Properties))
				for n := range schema.Properties {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					p := schema.Properties[n]
					req := ""
					for _, r := range schema.Required {
						if r == n {
							req = " (required)"
						}
					}
					fmt.Fprintf(out, "    --param %s=%v%s  %s\n", n, p.Type, req, p.Description)
				}
			}
			return nil
		}}
}
