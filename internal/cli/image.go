package cli

import (
	"github.com/spf13/cobra"

	"github.com/ostask/ostask/ops"
)

// newImageCmd is for the images ostask makes: the snapshots and backups
// of 'server snapshot' and 'server backup'.
func newImageCmd(cf *cloudFlags) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Delete the images (snapshots, backups) that server snapshot and backup made"}
	var wf waitFlags
	del := &cobra.Command{
		Use:   "delete IMAGE...",
		Short: "Delete images and wait until Glance no longer lists them, retrying a delete that fails",
		Example: simNote + `  ostask server create web --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network none
  ostask server snapshot web --name web-snap
  ostask image delete web-snap --retries 3`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachResource(cmd, cf, &wf, args, "image", "delete", resolveImage, deleting((*ops.Cloud).DeleteImage))
		},
	}
	wf.register(del, withRetries, "image")
	c.AddCommand(del)
	return c
}
