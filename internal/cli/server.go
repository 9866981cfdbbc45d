package cli

import (
	"context"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/ops"
)

func serverStatus(s *servers.Server) string {
	if s == nil {
		return "done"
	}
	return s.Status
}

func imageStatus(im *images.Image) string {
	if im == nil {
		return "done"
	}
	return string(im.Status)
}

// simNote heads the examples that act on servers an earlier line made:
// they need one cloud across commands, which --sim (a new cloudsim per
// command) is not.
const simNote = "  # with 'ostask sim' running in another terminal and the two variables it prints exported:\n"

// serverAction is a command that runs one operation on each server given.
type serverAction struct {
	use, short, example string
	flags               func(c *cobra.Command)
	check               func() error
	op                  func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error)
}

func newServerCmd(cf *cloudFlags) *cobra.Command {
	c := &cobra.Command{Use: "server", Short: "Run server operations and wait until the cloud has really finished"}
	c.AddCommand(newServerCreateCmd(cf), newServerDeleteCmd(cf), newServerListCmd(cf), newServerShowCmd(cf))
	var (
		hard, confirm bool
		flavor        string
	)
	simple := func(call func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error)) func(context.Context, *ops.Cloud, *running, string, []ops.Option) (string, error) {
		return func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error) {
			op, err := call(cl)(ctx, id, o...)
			return await(ctx, r, op, err, serverStatus)
		}
	}
	withConfirm := func(call func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error)) func(context.Context, *ops.Cloud, *running, string, []ops.Option) (string, error) {
		return func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error) {
			op, err := call(cl)(ctx, id, o...)
			st, err := await(ctx, r, op, err, serverStatus)
			if err != nil || !confirm || r.noWait {
				return st, err
			}
			cop, err := cl.ConfirmResize(ctx, id, o...)
			return await(ctx, r, cop, err, serverStatus)
		}
	}
	actions := []serverAction{
		{use: "reboot SERVER...", short: "Reboot servers (soft, or --hard) and wait until ACTIVE",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server reboot web --hard`,
			flags: func(c *cobra.Command) { c.Flags().BoolVar(&hard, "hard", false, "hard reboot") },
			op: func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error) {
				op, err := cl.RebootServer(ctx, id, hard, o...)
				return await(ctx, r, op, err, serverStatus)
			}},
		{use: "stop SERVER...", short: "Stop servers and wait until SHUTOFF",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server stop web
  ostask server start web`,
			op: simple(func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error) {
				return cl.StopServer
			})},
		{use: "start SERVER...", short: "Start stopped servers and wait until ACTIVE",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server stop web
  ostask server start web`,
			op: simple(func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error) {
				return cl.StartServer
			})},
		{use: "resize SERVER... --flavor FLAVOR", short: "Resize servers and wait for VERIFY_RESIZE (or ACTIVE with --confirm)",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server resize web --flavor m1.small
  ostask server confirm-resize web          # or: ostask server revert-resize web`,
			flags: func(c *cobra.Command) {
				c.Flags().StringVar(&flavor, "flavor", "", "new flavor (name or id)")
				requireFlags(c, "flavor")
				c.Flags().BoolVar(&confirm, "confirm", false, "confirm the resize once in VERIFY_RESIZE")
			},
			op: func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error) {
				fid, err := resolveFlavor(ctx, cl, flavor)
				if err != nil {
					return "", err
				}
				return withConfirm(func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error) {
					return func(ctx context.Context, id string, o ...ops.Option) (*ops.Operation[*servers.Server], error) {
						return cl.ResizeServer(ctx, id, fid, o...)
					}
				})(ctx, cl, r, id, o)
			}},
		{use: "confirm-resize SERVER...", short: "Confirm a resize or cold migration in VERIFY_RESIZE and wait until ACTIVE",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server resize web --flavor m1.small
  ostask server confirm-resize web`,
			op: simple(func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error) {
				return cl.ConfirmResize
			})},
		{use: "revert-resize SERVER...", short: "Revert a resize or cold migration in VERIFY_RESIZE and wait until back on the old flavor",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server resize web --flavor m1.small
  ostask server revert-resize web`,
			op: simple(func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error) {
				return cl.RevertResize
			})},
		{use: "migrate SERVER...", short: "Cold-migrate servers (admin) and wait for VERIFY_RESIZE (or ACTIVE with --confirm)",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none --os-cloud ostask-sim-admin
  ostask server migrate web --confirm --os-cloud ostask-sim-admin`,
			flags: func(c *cobra.Command) {
				c.Flags().BoolVar(&confirm, "confirm", false, "confirm the migration once in VERIFY_RESIZE")
			},
			op: withConfirm(func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error) {
				return cl.MigrateServer
			})},
		{use: "live-migrate SERVER...", short: "Live-migrate servers (admin) and wait until ACTIVE on another host; a silent rollback is an error",
			example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none --os-cloud ostask-sim-admin
  ostask server live-migrate web --os-cloud ostask-sim-admin`,
			op: simple(func(cl *ops.Cloud) func(context.Context, string, ...ops.Option) (*ops.Operation[*servers.Server], error) {
				return cl.LiveMigrateServer
			})},
	}
	for _, a := range actions {
		c.AddCommand(newServerActionCmd(cf, a))
	}
	c.AddCommand(newSnapshotCmd(cf, false), newSnapshotCmd(cf, true))
	return c
}

func newServerActionCmd(cf *cloudFlags, a serverAction) *cobra.Command {
	var wf waitFlags
	sub := &cobra.Command{Use: a.use, Short: a.short, Example: a.example, Args: cobra.MinimumNArgs(1)}
	wf.register(sub, 0, "server")
	if a.flags != nil {
		a.flags(sub)
	}
	phase := firstWord(a.use)
	sub.RunE = func(cmd *cobra.Command, args []string) error {
		return eachResource(cmd, cf, &wf, args, "server", phase, resolveServer, a.op)
	}
	return sub
}

// eachResource connects, resolves each ref to an id, and runs one job per
// resource: the body of the commands that act on existing resources.
func eachResource(cmd *cobra.Command, cf *cloudFlags, wf *waitFlags, refs []string, what, phase string,
	resolve func(ctx context.Context, cl *ops.Cloud, ref string) (string, error),
	run func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error)) error {
	opts, err := wf.options(false)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	s, err := cf.connect(ctx, ops.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	ids := make([]string, len(refs))
	for i, ref := range refs {
		if ids[i], err = resolve(ctx, s.cloud, ref); err != nil {
			return err
		}
	}
	jobs := make([]job, len(refs))
	for i := range refs {
		jobs[i] = job{label: refs[i], id: ids[i], run: func(ctx context.Context, r *running) (string, error) {
			return run(ctx, s.cloud, r, ids[i], opts)
		}}
	}
	rn := &runner{phase: phase, what: what, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), wf: wf, cloud: s.cloud}
	return rn.run(ctx, jobs)
}

func resolveServers(ctx context.Context, cl *ops.Cloud, refs []string) ([]string, error) {
	ids := make([]string, len(refs))
	for i, ref := range refs {
		var err error
		if ids[i], err = resolveServer(ctx, cl, ref); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func firstWord(s string) string {
	for i, r := range s {
		if r == ' ' {
			return s[:i]
		}
	}
	return s
}

func newServerDeleteCmd(cf *cloudFlags) *cobra.Command {
	var wf waitFlags
	c := &cobra.Command{
		Use:   "delete SERVER...",
		Short: "Delete servers and wait until they are gone, retrying a delete that fails",
		Example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none --count 2
  ostask server delete web-1 web-2 --retries 3`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachResource(cmd, cf, &wf, args, "server", "delete", resolveServer, deleting((*ops.Cloud).DeleteServer))
		},
	}
	wf.register(c, withRetries, "server")
	return c
}

// deleting is the job of a delete command: del, which ops tries up to
// --retries times, each attempt waited on.
func deleting(del func(cl *ops.Cloud, ctx context.Context, id string, o ...ops.Option) (*ops.Operation[struct{}], error)) func(context.Context, *ops.Cloud, *running, string, []ops.Option) (string, error) {
	return func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error) {
		op, err := del(cl, ctx, id, o...)
		return await(ctx, r, op, err, func(struct{}) string { return "deleted" })
	}
}

func newServerCreateCmd(cf *cloudFlags) *cobra.Command {
	var (
		wf                     waitFlags
		flavor, image, network string
		bootVolumeSize, count  int
		az                     string
		metadata               map[string]string
	)
	c := &cobra.Command{
		Use:   "create NAME --flavor FLAVOR --image IMAGE",
		Short: "Boot servers and wait until ACTIVE, retrying failed builds after deleting them",
		Long: `Boot servers and wait until each is ACTIVE with no task in progress.

A build that fails (ERROR), hangs past --timeout or vanishes is deleted and
tried again, up to --retries attempts in all; the last failed attempt is
deleted too, unless --keep-failed. Each server carries an idempotency key
(printed at the start when ostask makes it up): re-running the command with
--idempotency-key KEY adopts the servers an earlier run made, so an
interrupted or killed run never leads to duplicates.

On SIGINT or SIGTERM, the servers still building are listed with their ids
as left running (the cloud goes on building them), or deleted with
--cleanup-on-interrupt.`,
		Example: `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --count 3 --retries 3 --sim
  ostask server create db --flavor m1.small --image cirros-0.6.2-x86_64-disk --boot-volume-size 20 --sim
  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --idempotency-key deploy-42 --json --sim`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := wf.options(true)
			if err != nil {
				return err
			}
			if count < 1 {
				return usageError("--count must be >= 1, got %d", count)
			}
			if bootVolumeSize < 0 {
				return usageError("--boot-volume-size must be >= 0")
			}
			nets, err := parseNetworks(network)
			if err != nil {
				return err
			}
			key, generated, err := createKeys(&wf, cmd.Flags().Changed("idempotency-key"))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := cf.connect(ctx, ops.Config{})
			if err != nil {
				return err
			}
			defer s.Close()
			fid, err := resolveFlavor(ctx, s.cloud, flavor)
			if err != nil {
				return err
			}
			iid, err := resolveImage(ctx, s.cloud, image)
			if err != nil {
				return err
			}
			resume := resumeCommand(argsOf(ctx), key)
			announceKey(cmd.ErrOrStderr(), key, generated, resume)
			labels := names(args[0], count)
			jobs := make([]job, len(labels))
			for i := range labels {
				k := resourceKey(key, i)
				jobs[i] = job{label: labels[i], kind: ops.KindServer, name: labels[i], key: k,
					run: func(ctx context.Context, r *running) (string, error) {
						co := ops.ServerCreateOpts{Name: labels[i], FlavorRef: fid, ImageRef: iid, Networks: nets,
							Metadata: metadata, AvailabilityZone: az}
						if bootVolumeSize > 0 {
							co.ImageRef = ""
							co.BlockDevice = []servers.BlockDevice{{UUID: iid, SourceType: servers.SourceImage, DestinationType: servers.DestinationVolume,
								VolumeSize: bootVolumeSize, BootIndex: 0, DeleteOnTermination: true}}
						}
						op, err := s.cloud.CreateServer(ctx, co, append(opts[:len(opts):len(opts)], ops.WithIdempotencyKey(k))...)
						return await(ctx, r, op, err, serverStatus)
					}}
			}
			rn := &runner{phase: "create", what: "server", out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), wf: &wf, cloud: s.cloud, resume: resume}
			return rn.run(ctx, jobs)
		},
	}
	wf.register(c, withRetries|withKeep|withKey, "server")
	c.Flags().StringVar(&flavor, "flavor", "", "flavor name or id")
	c.Flags().StringVar(&image, "image", "", "image name or id")
	c.Flags().StringVar(&network, "network", "auto", "networks: auto, none, or network UUIDs separated by commas")
	c.Flags().IntVar(&bootVolumeSize, "boot-volume-size", 0, "boot from a new volume of this many GiB made from the image")
	c.Flags().IntVar(&count, "count", 1, "create this many servers, named NAME-1..NAME-N, at once")
	c.Flags().StringVar(&az, "availability-zone", "", "availability zone")
	c.Flags().StringToStringVar(&metadata, "property", nil, "server metadata key=value (repeatable)")
	requireFlags(c, "flavor")
	requireFlags(c, "image")
	return c
}

// newSnapshotCmd is "server snapshot" (createImage) or, with backup set,
// "server backup" (createBackup): both make images, so both are creates
// with idempotency keys.
func newSnapshotCmd(cf *cloudFlags, backup bool) *cobra.Command {
	var (
		wf                waitFlags
		imgName, backType string
		rotation          int
	)
	c := &cobra.Command{
		Use:   "snapshot SERVER... --name NAME",
		Short: "Snapshot servers (createImage) and wait until the image is active",
		Example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server snapshot web --name web-snap
  ostask image delete web-snap`,
		Args: cobra.MinimumNArgs(1),
	}
	phase := "snapshot"
	if backup {
		phase = "backup"
		c.Use, c.Short = "backup SERVER... --name NAME", "Back up servers (createBackup) and wait until the image is active"
		c.Example = simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server backup web --name web-nightly --type nightly --rotation 2
  ostask image delete web-nightly`
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		opts, err := wf.options(false)
		if err != nil {
			return err
		}
		if rotation < 0 {
			return usageError("--rotation must be >= 0")
		}
		key, generated, err := createKeys(&wf, cmd.Flags().Changed("idempotency-key"))
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		s, err := cf.connect(ctx, ops.Config{})
		if err != nil {
			return err
		}
		defer s.Close()
		ids, err := resolveServers(ctx, s.cloud, args)
		if err != nil {
			return err
		}
		resume := resumeCommand(argsOf(ctx), key)
		announceKey(cmd.ErrOrStderr(), key, generated, resume)
		jobs := make([]job, len(args))
		for i, ref := range args {
			k := resourceKey(key, i)
			jobs[i] = job{label: ref, kind: ops.KindImage, name: imgName, key: k, run: func(ctx context.Context, r *running) (string, error) {
				o := append(opts[:len(opts):len(opts)], ops.WithIdempotencyKey(k))
				var op *ops.Operation[*images.Image]
				var err error
				if backup {
					op, err = s.cloud.CreateServerBackup(ctx, ids[i], imgName, backType, rotation, o...)
				} else {
					op, err = s.cloud.CreateServerImage(ctx, ids[i], imgName, nil, o...)
				}
				return await(ctx, r, op, err, imageStatus)
			}}
		}
		rn := &runner{phase: phase, what: "image", out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), wf: &wf, cloud: s.cloud, resume: resume}
		return rn.run(ctx, jobs)
	}
	wf.register(c, withKey, "image")
	c.Flags().StringVar(&imgName, "name", "", "image name")
	requireFlags(c, "name")
	if backup {
		c.Flags().StringVar(&backType, "type", "daily", "backup type")
		c.Flags().IntVar(&rotation, "rotation", 1, "backups of this type to keep")
	}
	return c
}
