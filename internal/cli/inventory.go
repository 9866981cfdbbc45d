package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/ops"
)

// Commands that read, to see what the waiting commands made and left:
// server list|show, volume list|show.

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readCommand connects and runs read; errors are described once.
func readCommand(cmd *cobra.Command, cf *cloudFlags, read func(ctx context.Context, cl *ops.Cloud) error) error {
	ctx := cmd.Context()
	s, err := cf.connect(ctx, ops.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := read(ctx, s.cloud); err != nil {
		if _, ok := err.(*ExitError); ok {
			return err
		}
		return &ExitError{Code: 1, Err: fmt.Errorf("%s", describe(err))}
	}
	return nil
}

// rawBody returns the "key" object of a result's JSON body, as sent.
func rawBody(r gophercloud.Result, key string) any {
	if m, ok := r.Body.(map[string]any); ok {
		return m[key]
	}
	return r.Body
}

func newServerListCmd(cf *cloudFlags) *cobra.Command {
	var asJSON bool
	var name string
	c := &cobra.Command{
		Use:     "list",
		Short:   "List the project's servers with their status and task state",
		Example: "  ostask server list --sim\n  ostask server list --name '^web-' --json --sim",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return readCommand(cmd, cf, func(ctx context.Context, cl *ops.Cloud) error {
				pages, err := servers.List(cl.Compute, servers.ListOpts{Name: name}).AllPages(ctx)
				if err != nil {
					return err
				}
				ss, err := servers.ExtractServers(pages)
				if err != nil {
					return err
				}
				sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
				out := cmd.OutOrStdout()
				if asJSON {
					type row struct {
						ID        string `json:"id"`
						Name      string `json:"name"`
						Status    string `json:"status"`
						TaskState string `json:"task_state"`
						Updated   string `json:"updated"`
					}
					rows := make([]row, 0, len(ss))
					for _, s := range ss {
						rows = append(rows, row{s.ID, s.Name, s.Status, s.TaskState, s.Updated.UTC().Format(time.RFC3339)})
					}
					return printJSON(out, rows)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tTASK STATE")
				for _, s := range ss {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Status, dash(s.TaskState))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the servers as JSON")
	c.Flags().StringVar(&name, "name", "", "only servers whose name matches this regular expression (Nova's name filter)")
	return c
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newServerShowCmd(cf *cloudFlags) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show SERVER",
		Short: "Show one server: status, task state, fault, flavor, addresses, volumes, metadata",
		Example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server show web
  ostask server show web --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return readCommand(cmd, cf, func(ctx context.Context, cl *ops.Cloud) error {
				id, err := resolveServer(ctx, cl, args[0])
				if err != nil {
					return err
				}
				res := servers.Get(ctx, cl.Compute, id)
				s, err := res.Extract()
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSON(out, rawBody(res.Result, "server"))
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
				row("id", s.ID)
				row("name", s.Name)
				row("status", s.Status)
				row("task state", dash(s.TaskState))
				row("vm state", dash(s.VmState))
				if s.Fault.Message != "" {
					row("fault", fmt.Sprintf("%s (code %d)", s.Fault.Message, s.Fault.Code))
				}
				row("flavor", flavorName(s.Flavor))
				if id, _ := s.Image["id"].(string); id != "" {
					row("image", id)
				}
				row("availability zone", dash(s.AvailabilityZone))
				row("addresses", compactJSON(s.Addresses))
				var vols []string
				for _, v := range s.AttachedVolumes {
					vols = append(vols, v.ID)
				}
				row("volumes", dash(strings.Join(vols, ", ")))
				row("metadata", compactJSON(s.Metadata))
				row("created", s.Created.UTC().Format(time.RFC3339))
				row("updated", s.Updated.UTC().Format(time.RFC3339))
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the server as the cloud sent it")
	return c
}

func flavorName(f map[string]any) string {
	if n, _ := f["original_name"].(string); n != "" {
		return n
	}
	if id, _ := f["id"].(string); id != "" {
		return id
	}
	return "-"
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" || string(b) == "{}" {
		return "-"
	}
	return string(b)
}

func newVolumeListCmd(cf *cloudFlags) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "list",
		Short:   "List the project's volumes with their status, size and attachments",
		Example: "  ostask volume list --sim\n  ostask volume list --json --sim",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return readCommand(cmd, cf, func(ctx context.Context, cl *ops.Cloud) error {
				if cl.Volume == nil {
					return &ExitError{Code: 2, Err: errorf("the cloud has no block-storage service")}
				}
				pages, err := volumes.List(cl.Volume, volumes.ListOpts{}).AllPages(ctx)
				if err != nil {
					return err
				}
				vs, err := volumes.ExtractVolumes(pages)
				if err != nil {
					return err
				}
				sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
				out := cmd.OutOrStdout()
				if asJSON {
					type row struct {
						ID         string   `json:"id"`
						Name       string   `json:"name"`
						Status     string   `json:"status"`
						Size       int      `json:"size"`
						AttachedTo []string `json:"attached_to"`
					}
					rows := make([]row, 0, len(vs))
					for _, v := range vs {
						rows = append(rows, row{v.ID, v.Name, v.Status, v.Size, attachedTo(v)})
					}
					return printJSON(out, rows)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tSIZE\tATTACHED TO")
				for _, v := range vs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d GiB\t%s\n", v.ID, v.Name, v.Status, v.Size, dash(strings.Join(attachedTo(v), ", ")))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the volumes as JSON")
	return c
}

func attachedTo(v volumes.Volume) []string {
	out := []string{}
	for _, a := range v.Attachments {
		out = append(out, a.ServerID)
	}
	return out
}

func newVolumeShowCmd(cf *cloudFlags) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show VOLUME",
		Short: "Show one volume: status, size, type, attachments, metadata",
		Example: simNote + `  ostask volume create data --size 1
  ostask volume show data
  ostask volume show data --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return readCommand(cmd, cf, func(ctx context.Context, cl *ops.Cloud) error {
				id, err := resolveVolume(ctx, cl, args[0])
				if err != nil {
					return err
				}
				res := volumes.Get(ctx, cl.Volume, id)
				v, err := res.Extract()
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return printJSON(out, rawBody(res.Result, "volume"))
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
				row("id", v.ID)
				row("name", v.Name)
				row("status", v.Status)
				row("size", fmt.Sprintf("%d GiB", v.Size))
				row("type", dash(v.VolumeType))
				row("bootable", v.Bootable)
				row("availability zone", dash(v.AvailabilityZone))
				row("attached to", dash(strings.Join(attachedTo(*v), ", ")))
				row("metadata", compactJSON(v.Metadata))
				row("created", v.CreatedAt.UTC().Format(time.RFC3339))
				row("updated", v.UpdatedAt.UTC().Format(time.RFC3339))
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the volume as the cloud sent it")
	return c
}
