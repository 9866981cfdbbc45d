package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ostask/ostask/cloudsim"
)

// simFlags are the flags shared by every command that can start cloudsim.
type simFlags struct {
	timing    string
	faultPlan string
	seed      int64
}

func (f *simFlags) register(c *cobra.Command, defaultTiming, defaultFaults string) {
	c.Flags().StringVar(&f.timing, "timing", defaultTiming, "cloudsim timing model: fast or realistic")
	c.Flags().StringVar(&f.faultPlan, "fault-plan", defaultFaults,
		"cloudsim fault plan: none, demo, a YAML/JSON file, or settings like server.create.error=0.2,api.429=0.01")
	c.Flags().Int64Var(&f.seed, "seed", 1, "cloudsim random seed (fault rolls and jitter)")
}

func (f *simFlags) config() (cloudsim.Config, error) {
	var t cloudsim.Timing
	switch f.timing {
	case "fast":
		t = cloudsim.FastTiming()
	case "realistic":
		t = cloudsim.RealisticTiming()
	default:
		return cloudsim.Config{}, usageError("--timing %q: want fast or realistic", f.timing)
	}
	plan, err := cloudsim.ParseFaultPlan(f.faultPlan)
	if err != nil {
		return cloudsim.Config{}, usageError("--fault-plan: %v", err)
	}
	return cloudsim.Config{Timing: &t, Faults: plan, Seed: f.seed}, nil
}

func newSimCmd() *cobra.Command {
	var (
		sf         simFlags
		listen     string
		cloudsYAML string
		cloudName  string
	)
	c := &cobra.Command{
		Use:   "sim",
		Short: "Run cloudsim, the embedded OpenStack-compatible cloud, until interrupted",
		Long: `Run cloudsim standalone: Keystone v3, Nova v2.1, Cinder v3 and Glance v2 with
background state walks and an optional fault plan. It writes a clouds.yaml
with a cloud named ostask-sim (user demo) and ostask-sim-admin, so that

    OS_CLIENT_CONFIG_FILE=<file> OS_CLOUD=ostask-sim openstack server list

works with any OpenStack client. Stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := sf.config()
			if err != nil {
				return err
			}
			cfg.Listen = listen
			sim, err := cloudsim.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer sim.Close()
			if cloudsYAML != "" {
				if err := sim.WriteCloudsYAML(cloudsYAML, cloudName); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cloudsim listening on %s\n", sim.URL())
			fmt.Fprintf(out, "  auth url:    %s (users demo/admin, password %s, domain Default)\n", sim.AuthURL(), cloudsim.DefaultPassword)
			fmt.Fprintf(out, "  counters:    %s/_sim/counters\n", sim.URL())
			if cloudsYAML != "" {
				abs, _ := filepath.Abs(cloudsYAML)
				fmt.Fprintf(out, "  clouds.yaml: %s\n  try:         OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=%s openstack server list\n", abs, abs, cloudName)
			}
			<-cmd.Context().Done()
			fmt.Fprintln(out, "cloudsim: stopping")
			return nil
		},
	}
	sf.register(c, "realistic", "none")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8900", "address to listen on")
	c.Flags().StringVar(&cloudsYAML, "clouds-yaml", "clouds.yaml", "write a clouds.yaml for the simulator here (\"\" to skip)")
	c.Flags().StringVar(&cloudName, "cloud-name", cloudsim.DefaultCloudName, "cloud name in the clouds.yaml")
	return c
}
