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

	var (
		cwf          waitFlags
		size, count  int
		image, vtype string
		az           string
	)
	create := &cobra.Command{
		Use:   "create NAME --size GIB",
		Short: "Create volumes and wait until available, retrying failed ones after deleting them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := cwf.options()
			if err != nil {
				return err
			}
			if size < 1 {
				return usageError("--size must be a positive number of GiB, got %d", size)
			}
			if count < 1 {
				return usageError("--count must be >= 1, got %d", count)
			}
			ctx := cmd.Context()
			s, err := cf.connect(ctx, ops.Config{})
			if err != nil {
				return err
			}
			defer s.Close()
			iid := ""
			if image != "" {
				if iid, err = resolveImage(ctx, s.cloud, image); err != nil {
					return err
				}
			}
			labels := names(args[0], count)
			return runOps(ctx, cmd.OutOrStdout(), "create", labels, &cwf, func(ctx context.Context, i int) (started, error) {
				op, err := s.cloud.CreateVolume(ctx, ops.VolumeCreateOpts{Name: labels[i], Size: size, ImageID: iid,
					VolumeType: vtype, AvailabilityZone: az}, opts...)
				if err != nil {
					return started{}, err
				}
				return track(op, volumeStatus), nil
			})
		},
	}
	cwf.register(create, true)
	create.Flags().IntVar(&size, "size", 0, "size in GiB")
	create.Flags().IntVar(&count, "count", 1, "create this many volumes, named NAME-1..NAME-N")
	create.Flags().StringVar(&image, "image", "", "make the volume from this image (name or id)")
	create.Flags().StringVar(&vtype, "type", "", "volume type")
	create.Flags().StringVar(&az, "availability-zone", "", "availability zone")
	requireFlags(create, "size")
	c.AddCommand(create)

	var dwf waitFlags
	del := &cobra.Command{
		Use: "delete VOLUME...", Short: "Delete volumes and wait until they are gone", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachVolume(cmd, cf, &dwf, args, "delete", func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.DeleteVolume(ctx, id, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, gone), nil
			})
		},
	}
	dwf.register(del, false)
	c.AddCommand(del)

	var ewf waitFlags
	var newSize int
	ext := &cobra.Command{
		Use: "extend VOLUME... --size GIB", Short: "Extend volumes and wait until they are back at the new size", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if newSize < 1 {
				return usageError("--size must be a positive number of GiB, got %d", newSize)
			}
			return eachVolume(cmd, cf, &ewf, args, "extend", func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error) {
				op, err := cl.ExtendVolume(ctx, id, newSize, o...)
				if err != nil {
					return started{}, err
				}
				return track(op, volumeStatus), nil
			})
		},
	}
	ewf.register(ext, false)
	ext.Flags().IntVar(&newSize, "size", 0, "new size in GiB")
	requireFlags(ext, "size")
	c.AddCommand(ext)

	for _, attach := range []bool{true, false} {
		var wf waitFlags
		var device string
		use, short, name := "attach SERVER VOLUME", "Attach a volume and wait until in-use on both sides", "attach"
		if !attach {
			use, short, name = "detach SERVER VOLUME", "Detach a volume and wait until available on both sides", "detach"
		}
		sub := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				opts, err := wf.options()
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
				return runOps(ctx, cmd.OutOrStdout(), name, []string{args[1]}, &wf, func(ctx context.Context, _ int) (started, error) {
					var op *ops.Operation[*ops.Volume]
					if attach {
						op, err = s.cloud.AttachVolume(ctx, sid, vid, device, opts...)
					} else {
						op, err = s.cloud.DetachVolume(ctx, sid, vid, opts...)
					}
					if err != nil {
						return started{}, err
					}
					return track(op, volumeStatus), nil
				})
			}}
		wf.register(sub, false)
		if attach {
			sub.Flags().StringVar(&device, "device", "", "device name hint, e.g. /dev/vdb")
		}
		c.AddCommand(sub)
	}
	return c
}

func eachVolume(cmd *cobra.Command, cf *cloudFlags, wf *waitFlags, refs []string, phase string,
	run func(ctx context.Context, cl *ops.Cloud, id string, o []ops.Option) (started, error)) error {
	opts, err := wf.options()
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
		if ids[i], err = resolveVolume(ctx, s.cloud, ref); err != nil {
			return err
		}
	}
	return runOps(ctx, cmd.OutOrStdout(), phase, refs, wf, func(ctx context.Context, i int) (started, error) {
		return run(ctx, s.cloud, ids[i], opts)
	})
}
