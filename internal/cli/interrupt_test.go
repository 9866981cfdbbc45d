package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/ostask/ostask/cloudsim"
)

// childArgsEnv makes the test binary run the command line instead of the
// tests (see TestMain): a real process, for real signals.
const childArgsEnv = "OSTASK_CLI_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(childArgsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			panic(err)
		}
		os.Args = append([]string{"ostask"}, args...)
		os.Exit(Exec())
	}
	// Flow runs are recorded in the state directory by default: keep the
	// tests' runs out of the user's.
	dir, err := os.MkdirTemp("", "ostask-cli-test-state")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startChild runs ostask args in a child process (this test binary) with
// the test's environment.
func startChild(t *testing.T, args ...string) (cmd *exec.Cmd, stdout, stderr io.ReadCloser) {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd = exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(a))
	var err error
	if stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if stderr, err = cmd.StderrPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, stdout, stderr
}

var acceptedLine = regexp.MustCompile(`^create (web-\d): accepted, id ([0-9a-f-]{36})$`)

// SIGINT or SIGTERM while servers build: each is listed with its id as
// left running, never as FAILED, in plain output and in --json; with
// --cleanup-on-interrupt they are deleted and listed as such.
func TestInterruptListsWhatIsLeftRunning(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sig           syscall.Signal
		json, cleanup bool
	}{
		{"SIGINT", syscall.SIGINT, false, false},
		{"SIGTERM --json", syscall.SIGTERM, true, false},
		{"SIGINT --json --cleanup-on-interrupt", syscall.SIGINT, true, true},
		{"SIGTERM --cleanup-on-interrupt", syscall.SIGTERM, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Builds hang: the servers are in flight until someone acts.
			sim := simEnv(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{cloudsim.OpServerCreate: {Hang: 1}}}})
			args := cmdArgs([]string{"server", "create", "web", "--count", "3"}, createArgs)
			if tc.json {
				args = append(args, "--json")
			}
			if tc.cleanup {
				args = append(args, "--cleanup-on-interrupt")
			}
			cmd, stdout, stderr := startChild(t, args...)
			// Progress goes to stdout, or to stderr with --json.
			progress, data := stdout, stderr
			if tc.json {
				progress, data = stderr, stdout
			}
			var dataOut []byte
			dataDone := make(chan struct{})
			go func() { dataOut, _ = io.ReadAll(data); close(dataDone) }()
			ids := map[string]string{}
			var progressOut strings.Builder
			sc := bufio.NewScanner(progress)
			for len(ids) < 3 && sc.Scan() {
				progressOut.WriteString(sc.Text() + "\n")
				if m := acceptedLine.FindStringSubmatch(sc.Text()); m != nil {
					ids[m[1]] = m[2]
				}
			}
			if len(ids) != 3 {
				t.Fatalf("saw %d accepted creates:\n%s", len(ids), progressOut.String())
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(progress)
			progressOut.Write(rest)
			<-dataDone
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("exit: %v\nprogress:\n%s\ndata:\n%s", err, progressOut.String(), dataOut)
			}
			stdoutText, stderrText := string(dataOut), progressOut.String()
			if !tc.json {
				stdoutText, stderrText = progressOut.String(), string(dataOut)
			}
			if strings.Contains(stdoutText+stderrText, "FAILED") {
				t.Fatalf("an interrupt is reported as a failure:\n%s\n%s", stdoutText, stderrText)
			}
			want, label := resultLeftRunning, "left running"
			if tc.cleanup {
				want, label = resultDeleted, "deleted on interrupt"
			}
			if tc.json {
				res := decodeOutcomes(t, stdoutText)
				if len(res) != 3 {
					t.Fatalf("%d outcomes", len(res))
				}
				for _, o := range res {
					if o.Result != want || o.ID != ids[o.Label] {
						t.Fatalf("outcome %+v, want %q with id %s", o, want, ids[o.Label])
					}
				}
			} else {
				for name, id := range ids {
					if !strings.Contains(stdoutText, "create "+name+": "+label+", id "+id) {
						t.Fatalf("stdout does not list %s (%s) as %s:\n%s", name, id, label, stdoutText)
					}
				}
			}
			for _, id := range ids {
				if !strings.Contains(stderrText, id) {
					t.Fatalf("stderr does not name %s:\n%s", id, stderrText)
				}
			}
			live := liveServers(sim)["web-1"]
			live = append(live, liveServers(sim)["web-2"]...)
			live = append(live, liveServers(sim)["web-3"]...)
			if tc.cleanup {
				if len(live) != 0 || !strings.Contains(stderrText, "deleted 3 server(s) that were in flight") {
					t.Fatalf("left %+v\n%s", live, stderrText)
				}
				return
			}
			if len(live) != 3 || !strings.Contains(stderrText, "3 operation(s) left running in the cloud") ||
				!strings.Contains(stderrText, "to adopt them instead of making more, run: ostask server create web") {
				t.Fatalf("servers %+v\nstderr:\n%s", live, stderrText)
			}
			for _, s := range live {
				if s.Status != "BUILD" || ids[s.Name] != s.ID {
					t.Fatalf("server %+v", s)
				}
			}
		})
	}
}
