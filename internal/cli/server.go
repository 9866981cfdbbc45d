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
	return "image " + im.ID + " " + string(im.Status)
}

func gone(struct{}) string { return "deleted" }

func newServerCmd(cf *cloudFlags) *cobra.Command {
	c := &cobra.Command{Use: "server", Short: "Run server operations and wait until the cloud has really finished"}
	c.AddCommand(newServerCreateCmd(cf))
	type action struct {
		use, short string
		op         string
		run        func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error)
	}
	var hard, confirm bool
	var flavor, imgName, backupType string
	var rotation int
	simple := []action{
		{"delete SERVER...", "Delete servers and wait until they are gone", "delete",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.DeleteServer(ctx, id, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, gone), nil
			}},
		{"reboot SERVER...", "Reboot servers (soft, or --hard) and wait until ACTIVE", "reboot",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.RebootServer(ctx, id, hard, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, serverStatus), nil
			}},
		{"stop SERVER...", "Stop servers and wait until SHUTOFF", "stop",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.StopServer(ctx, id, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, serverStatus), nil
			}},
		{"start SERVER...", "Start servers and wait until ACTIVE", "start",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.StartServer(ctx, id, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, serverStatus), nil
			}},
		{"resize SERVER... --flavor FLAVOR", "Resize servers and wait for VERIFY_RESIZE (or ACTIVE with --confirm)", "resize",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				fid, err := resolveFlavor(ctx, cl, flavor)
				if err != nil {
					return started{}, err
				}
				op, err := cl.ResizeServer(ctx, id, fid, o...)
				if err != nil {
					return started{}, err
				}
				return confirmAfter(ctx, cl, op, confirm, o), nil
			}},
		{"migrate SERVER...", "Cold-migrate servers (admin) and wait for VERIFY_RESIZE (or ACTIVE with --confirm)", "migrate",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.MigrateServer(ctx, id, o...)
				if err != nil {
					return started{}, err
				}
				return confirmAfter(ctx, cl, op, confirm, o), nil
			}},
		{"snapshot SERVER... --name NAME", "Snapshot servers (createImage) and wait until the image is active", "snapshot",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.CreateServerImage(ctx, id, imgName, nil, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, imageStatus), nil
			}},
		{"backup SERVER... --name NAME", "Back up servers (createBackup) and wait until the image is active", "backup",
			func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.CreateServerBackup(ctx, id, imgName, backupType, rotation, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, imageStatus), nil
			}},
	}
	for _, a := range simple {
		var wf waitFlags
		sub := &cobra.Command{Use: a.use, Short: a.short, Args: cobra.MinimumNArgs(1)}
		wf.register(sub, false)
		switch a.op {
		case "reboot":
			sub.Flags().BoolVar(&hard, "hard", false, "hard reboot")
		case "resize":
			sub.Flags().StringVar(&flavor, "flavor", "", "new flavor (name or id)")
			requireFlags(sub, "flavor")
			sub.Flags().BoolVar(&confirm, "confirm", false, "confirm the resize once in VERIFY_RESIZE")
		case "migrate":
			sub.Flags().BoolVar(&confirm, "confirm", false, "confirm the migration once in VERIFY_RESIZE")
		case "snapshot", "backup":
			sub.Flags().StringVar(&imgName, "name", "", "image name")
			requireFlags(sub, "name")
			if a.op == "backup" {
				sub.Flags().StringVar(&backupType, "type", "daily", "backup type")
				sub.Flags().IntVar(&rotation, "rotation", 1, "backups of this type to keep")
			}
		}
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			opts, err := wf.options()
			if err != nil {
				return err
			}
			if a.op == "backup" && rotation < 0 {
				return usageError("--rotation must be >= 0")
			}
			ctx := cmd.Context()
			s, err := cf.connect(ctx, ops.Config{})
			if err != nil {
				return err
			}
			defer s.Close()
			ids := make([]string, len(args))
			for i, ref := range args {
				if ids[i], err = resolveServer(ctx, s.cloud, ref); err != nil {
					return err
				}
			}
			return runOps(ctx, cmd.OutOrStdout(), a.op, args, &wf, func(ctx context.Context, i int) (started, error) {
				return a.run(ctx, s.cloud, ids[i], opts)
			})
		}
		c.AddCommand(sub)
	}
	return c
}

// confirmAfter chains a ConfirmResize after a resize/migrate when asked.
func confirmAfter(ctx context.Context, cl *ops.Cloud, op *ops.Operation[*servers.Server], confirm bool, o []ops.Option) started {
	if !confirm {
		return track(op, serverStatus)
	}
	st := track(op, serverStatus)
	return started{id: st.id, onDone: func(cb func(string, int, error)) {
		op.OnDone(func(s *servers.Server, err error) {
			if err != nil {
				cb("", op.Attempts(), err)
				return
			}
			// OnDone runs on the monitor goroutine: make the call elsewhere.
			go func() {
				cop, err := cl.ConfirmResize(ctx, s.ID, o...)
				if err != nil {
					cb("", 1, err)
					return
				}
				track(cop, serverStatus).onDone(cb)
			}()
		})
	}}
}

func newServerCreateCmd(cf *cloudFlags) *cobra.Command {
	var (
		wf                     waitFlags
		flavor, image, network string
		bootVolumeSize, count  int
		az, idempotKey         string
		metadata               map[string]string
	)
	c := &cobra.Command{
		Use:   "create NAME --flavor FLAVOR --image IMAGE",
		Short: "Boot servers and wait until ACTIVE, retrying failed builds after cleaning them up",
		Example: `  ostask server create web --flavor m1.small --image cirros --count 10 --retries 3
  ostask server create db --flavor m1.small --image cirros --boot-volume-size 20 --sim`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := wf.options()
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
			labels := names(args[0], count)
			return runOps(ctx, cmd.OutOrStdout(), "create", labels, &wf, func(ctx context.Context, i int) (started, error) {
				co := ops.ServerCreateOpts{Name: labels[i], FlavorRef: fid, ImageRef: iid, Networks: nets,
					Metadata: metadata, AvailabilityZone: az}
				if bootVolumeSize > 0 {
					co.ImageRef = ""
					co.BlockDevice = []servers.BlockDevice{{UUID: iid, SourceType: servers.SourceImage, DestinationType: servers.DestinationVolume,
						VolumeSize: bootVolumeSize, BootIndex: 0, DeleteOnTermination: true}}
				}
				o := opts
				if idempotKey != "" {
					o = append(o[:len(o):len(o)], ops.WithIdempotencyKey(idempotKey+"/"+labels[i]))
				}
				op, err := s.cloud.CreateServer(ctx, co, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, serverStatus), nil
			})
		},
	}
	wf.register(c, true)
	c.Flags().StringVar(&flavor, "flavor", "", "flavor name or id")
	c.Flags().StringVar(&image, "image", "", "image name or id")
	c.Flags().StringVar(&network, "network", "auto", "networks: auto, none, or network UUIDs separated by commas")
	c.Flags().IntVar(&bootVolumeSize, "boot-volume-size", 0, "boot from a new volume of this many GiB made from the image")
	c.Flags().IntVar(&count, "count", 1, "create this many servers, named NAME-1..NAME-N, at once")
	c.Flags().StringVar(&az, "availability-zone", "", "availability zone")
	c.Flags().StringToStringVar(&metadata, "property", nil, "server metadata key=value (repeatable)")
	c.Flags().StringVar(&idempotKey, "idempotency-key", "", "re-running with the same key adopts servers an earlier run made")
	requireFlags(c, "flavor")
	requireFlags(c, "image")
	return c
}
