package cli

import (
	"errors"
	"fmt"
	"os"
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
		notify     string
	)
	c := &cobra.Command{
		Use:   "sim",
		Short: "Run cloudsim, the embedded OpenStack-compatible cloud, until interrupted",
		Long: `Run cloudsim standalone: Keystone v3, Nova v2.1, Cinder v3 and Glance v2 with
background state walks and an optional fault plan. It writes a clouds.yaml
with a cloud named ostask-sim (user demo), ostask-sim-admin (user admin) and
ostask-sim-alt (user alt, of another project),
by default under your state directory ($XDG_STATE_HOME/ostask/sim, else
~/.local/state/ostask/sim; never the current directory), and prints where,
so that after

    export OS_CLIENT_CONFIG_FILE=<that file> OS_CLOUD=ostask-sim

ostask (without --sim) and any other OpenStack client use it:

    openstack server list
    ostask server list

Stops cleanly on SIGINT or SIGTERM.`,
		Example: `  ostask sim
  ostask sim --listen 127.0.0.1:8901 --timing fast --fault-plan demo --clouds-yaml /tmp/ostask-sim/clouds.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := sf.config()
			if err != nil {
				return err
			}
			cfg.Listen = listen
			if notify != "" {
				pub, err := cloudsim.DialAMQP(notify, "")
				if err != nil {
					return err
				}
				defer pub.Close() // deferred first: closed after the simulator
				cfg.Publisher = pub
			}
			sim, err := cloudsim.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer sim.Close()
			if !cmd.Flags().Changed("clouds-yaml") {
				dir, err := stateDir()
				if err != nil {
					return usageError("no state directory to write clouds.yaml in (%v); give --clouds-yaml PATH, or --clouds-yaml '' to write none", err)
				}
				cloudsYAML = filepath.Join(dir, "sim", "clouds.yaml")
			}
			if cloudsYAML != "" {
				if err := os.MkdirAll(filepath.Dir(cloudsYAML), 0o700); err != nil {
					return err
				}
				if err := sim.WriteCloudsYAML(cloudsYAML, cloudName); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cloudsim listening on %s\n", sim.URL())
			fmt.Fprintf(out, "  auth url:    %s (users demo/alt/admin, password %s, domain Default)\n", sim.AuthURL(), cloudsim.DefaultPassword)
			fmt.Fprintf(out, "  counters:    %s/_sim/counters\n", sim.URL())
			if notify != "" {
				fmt.Fprintf(out, "  notify:      exchange %s, routing keys %s and %s\n", cloudsim.NotifyExchange, cloudsim.NotifyTopicInfo, cloudsim.NotifyTopicError)
			}
			if cloudsYAML != "" {
				abs, _ := filepath.Abs(cloudsYAML)
				fmt.Fprintf(out, "  clouds.yaml: %s (clouds %s, %s-alt and %s-admin)\n", abs, cloudName, cloudName, cloudName)
				fmt.Fprintf(out, "  use it:      export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=%s\n", shellQuote(abs), cloudName)
			}
			<-cmd.Context().Done()
			fmt.Fprintln(out, "cloudsim: stopping")
			return nil
		},
	}
	sf.register(c, "realistic", "none")
	c.Flags().StringVar(&notify, "notify", "", "publish Nova's versioned notifications to this AMQP broker (amqp://user:password@host:5672/), on exchange "+cloudsim.NotifyExchange+" as Nova does")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8900", "address to listen on")
	c.Flags().StringVar(&cloudsYAML, "clouds-yaml", "", "write the simulator's clouds.yaml here (default: under the state directory; '' with the flag: none)")
	c.Flags().StringVar(&cloudName, "cloud-name", cloudsim.DefaultCloudName, "cloud name in the clouds.yaml")
	return c
}

// stateDir is where ostask keeps its files: $XDG_STATE_HOME/ostask, else
// ~/.local/state/ostask.
func stateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		if !filepath.IsAbs(d) {
			return "", errors.New("XDG_STATE_HOME is not an absolute path")
		}
		return filepath.Join(d, "ostask"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state", "ostask"), nil
}
