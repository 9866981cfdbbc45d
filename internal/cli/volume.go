package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ostask/ostask/ops"
)

func volumeStatus(v *ops.Volume) string {
	if v == nil {
		return "done"
	}
	return v.Status + " (" + strconv.Itoa(v.Size) + " GiB)"
}

func newVolumeCmd(cf *cloudFlags) *cobra.Command {
	c := &cobra.Command{Use: "volume", Short: "Run volume operations and wait until the cloud has really finished"}
	c.AddCommand(newVolumeCreateCmd(cf), newVolumeDeleteCmd(cf), newVolumeExtendCmd(cf),
		newVolumeAttachCmd(cf, true), newVolumeAttachCmd(cf, false), newVolumeListCmd(cf), newVolumeShowCmd(cf))
	return c
}

func newVolumeCreateCmd(cf *cloudFlags) *cobra.Command {
	var (
		wf           waitFlags
		size, count  int
		image, vtype string
		az           string
	)
	c := &cobra.Command{
		Use:   "create NAME --size GIB",
		Short: "Create volumes and wait until available, retrying failed ones after deleting them",
		Long: `Create volumes and wait until each is available.

A volume that fails (error) or hangs past --timeout is deleted and tried
again, up to --retries attempts in all; the last failed attempt is deleted
too, unless --keep-failed. Each volume carries an idempotency key (printed
at the start when ostask makes it up): re-running with --idempotency-key KEY
adopts what an earlier run made. On SIGINT or SIGTERM the volumes still
being made are listed as left running, or deleted with --cleanup-on-interrupt.`,
		Example: `  ostask volume create data --size 10 --count 3 --sim
  ostask volume create root --size 2 --image cirros-0.6.2-x86_64-disk --retries 2 --sim`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := wf.options(true)
			if err != nil {
				return err
			}
			if size < 1 {
				return usageError("--size must be a positive number of GiB, got %d", size)
			}
			if count < 1 {
				return usageError("--count must be >= 1, got %d", count)
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
			if s.cloud.Volume == nil {
				return &ExitError{Code: 2, Err: errorf("the cloud has no block-storage service")}
			}
			iid := ""
			if image != "" {
				if iid, err = resolveImage(ctx, s.cloud, image); err != nil {
					return err
				}
			}
			resume := resumeCommand(argsOf(ctx), key)
			announceKey(cmd.ErrOrStderr(), key, generated, resume)
			labels := names(args[0], count)
			jobs := make([]job, len(labels))
			for i := range labels {
				k := resourceKey(key, i)
				jobs[i] = job{label: labels[i], kind: ops.KindVolume, name: labels[i], key: k,
					run: func(ctx context.Context, r *running) (string, error) {
						op, err := s.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: labels[i], Size: size, ImageID: iid,
							VolumeType: vtype, AvailabilityZone: az}, append(opts[:len(opts):len(opts)], ops.WithIdempotencyKey(k))...)
						return await(ctx, r, op, err, volumeStatus)
					}}
			}
			rn := &runner{phase: "create", what: "volume", out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), wf: &wf, cloud: s.cloud, resume: resume}
			return rn.run(ctx, jobs)
		},
	}
	wf.register(c, withRetries|withKeep|withKey, "volume")
	c.Flags().IntVar(&size, "size", 0, "size in GiB")
	c.Flags().IntVar(&count, "count", 1, "create this many volumes, named NAME-1..NAME-N")
	c.Flags().StringVar(&image, "image", "", "make the volume from this image (name or id)")
	c.Flags().StringVar(&vtype, "type", "", "volume type")
	c.Flags().StringVar(&az, "availability-zone", "", "availability zone")
	requireFlags(c, "size")
	return c
}

func newVolumeDeleteCmd(cf *cloudFlags) *cobra.Command {
	var wf waitFlags
	c := &cobra.Command{
		Use:   "delete VOLUME...",
		Short: "Delete volumes and wait until they are gone, retrying a delete that fails",
		Example: simNote + `  ostask volume create data --size 1 --count 2
  ostask volume delete data-1 data-2 --retries 3`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachResource(cmd, cf, &wf, args, "volume", "delete", resolveVolume, deleting((*ops.Cloud).DeleteVolume))
		},
	}
	wf.register(c, withRetries, "volume")
	return c
}

func newVolumeExtendCmd(cf *cloudFlags) *cobra.Command {
	var wf waitFlags
	var newSize int
	c := &cobra.Command{
		Use: "extend VOLUME... --size GIB", Short: "Extend volumes and wait until they are available at the new size",
		Example: simNote + `  ostask volume create data --size 1
  ostask volume extend data --size 2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if newSize < 1 {
				return usageError("--size must be a positive number of GiB, got %d", newSize)
			}
			return eachResource(cmd, cf, &wf, args, "volume", "extend", resolveVolume, func(ctx context.Context, cl *ops.Cloud, r *running, id string, o []ops.Option) (string, error) {
				op, err := cl.ExtendVolume(ctx, id, newSize, o...)
				return await(ctx, r, op, err, volumeStatus)
			})
		},
	}
	wf.register(c, 0, "volume")
	c.Flags().IntVar(&newSize, "size", 0, "new size in GiB")
	requireFlags(c, "size")
	return c
}

func newVolumeAttachCmd(cf *cloudFlags, attach bool) *cobra.Command {
	var wf waitFlags
	var device string
	c := &cobra.Command{Use: "attach SERVER VOLUME", Short: "Attach a volume and wait until in-use on both sides",
		Example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask volume create data --size 1
  ostask volume attach web data
  ostask volume detach web data`,
		Args: cobra.ExactArgs(2)}
	phase := "attach"
	if !attach {
		phase = "detach"
		c.Use, c.Short = "detach SERVER VOLUME", "Detach a volume and wait until available on both sides"
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
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
		sid, err := resolveServer(ctx, s.cloud, args[0])
		if err != nil {
			return err
		}
		vid, err := resolveVolume(ctx, s.cloud, args[1])
		if err != nil {
			return err
		}
		j := job{label: args[1], id: vid, run: func(ctx context.Context, r *running) (string, error) {
			var op *ops.Operation[*ops.Volume]
			var err error
			if attach {
				op, err = s.cloud.AttachVolume(ctx, sid, vid, device, opts...)
			} else {
				op, err = s.cloud.DetachVolume(ctx, sid, vid, opts...)
			}
			return await(ctx, r, op, err, volumeStatus)
		}}
		rn := &runner{phase: phase, what: "volume", out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), wf: &wf, cloud: s.cloud}
		return rn.run(ctx, []job{j})
	}
	wf.register(c, 0, "volume")
	if attach {
		c.Flags().StringVar(&device, "device", "", "device name hint, e.g. /dev/vdb")
	}
	return c
}
