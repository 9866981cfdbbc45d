package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ostask/ostask/cloudsim"
)

const repoRoot = "../.."

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlock is a fenced block of a Markdown file.
type codeBlock struct {
	lang, text string
	after      string // the text after the block, up to the next block
}

var fence = regexp.MustCompile("(?ms)^```([a-z]*)\n(.*?)^```\n")

func codeBlocks(md string) []codeBlock {
	var out []codeBlock
	ms := fence.FindAllStringSubmatchIndex(md, -1)
	for i, m := range ms {
		end := len(md)
		if i+1 < len(ms) {
			end = ms[i+1][0]
		}
		out = append(out, codeBlock{lang: md[m[2]:m[3]], text: md[m[4]:m[5]], after: md[m[1]:end]})
	}
	return out
}

var exampleFile = regexp.MustCompile(`\[([a-z/]+/example_readme_test\.go)\]`)

// exampleBody is the code between "// readme:begin" and "// readme:end"
// in a Go file, one tab of indentation removed: what the README shows.
func exampleBody(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	if strings.Count(src, "// readme:begin\n") != 1 || strings.Count(src, "// readme:end\n") != 1 {
		t.Fatalf("%s: want one readme:begin and one readme:end marker", path)
	}
	_, rest, _ := strings.Cut(src, "// readme:begin\n")
	body, _, _ := strings.Cut(rest, "// readme:end\n")
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
}

// Every Go snippet of the README is the body of a compiled and run
// Example, byte for byte, and says which.
func TestReadmeGoSnippetsAreCompiledExamples(t *testing.T) {
	n := 0
	for _, b := range codeBlocks(readme(t)) {
		if b.lang != "go" {
			continue
		}
		n++
		m := exampleFile.FindStringSubmatch(b.after)
		if m == nil {
			t.Errorf("the Go snippet starting %q does not say which example_readme_test.go compiles it", firstLineOf(b.text))
			continue
		}
		if want := exampleBody(t, m[1]); b.text != want {
			t.Errorf("README snippet and %s differ:\n--- README\n%s\n--- %s\n%s", m[1], b.text, m[1], want)
		}
	}
	if n < 3 {
		t.Fatalf("found %d Go snippets in the README, want the ops, flow and cloudsim ones", n)
	}
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// shellWords splits a command line as a shell would for these examples:
// quotes, comments, a trailing &.
func shellWords(t *testing.T, line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unclosed quote in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				t.Fatalf("unclosed quote in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '#' && !inWord:
			i = len(line)
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) > 0 && words[len(words)-1] == "&" {
		words = words[:len(words)-1]
	}
	return words
}

// exampleGroup is a sequence of command lines meant to run in order, on
// one cloud: a README sh block, or one command's --help examples.
type exampleGroup struct {
	name  string
	lines []string
	t     *testing.T // the group's test, while it runs
}

func ostaskLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "ostask ") {
			out = append(out, l)
		}
	}
	return out
}

// runExampleGroup runs each line of g in order: lines with --sim on their
// own embedded cloudsim; 'ostask sim' lines until cloudsim serves (on a
// free port, writing its clouds.yaml under a temporary state directory);
// the other lines on one cloudsim for the whole group, selected through
// OS_CLIENT_CONFIG_FILE and OS_CLOUD as 'ostask sim' tells users to.
func runExampleGroup(t *testing.T, g exampleGroup) {
	t.Run(g.name, func(t *testing.T) {
		g.t = t
		if needsSharedSim(g.lines) {
			simEnv(t, cloudsim.Config{})
		}
		for _, line := range g.lines {
			args := shellWords(t, line)[1:]
			ok := t.Run(strings.Join(args, " "), func(t *testing.T) {
				switch {
				case args[0] == "sim":
					runSimLine(t, args)
					return
				case args[0] == "serve":
					// Serves the rest of the group, until its end.
					startServeArgs(g.t, args)
					return
				case contains(args, "--sim"):
					clearCloudEnv(t)
				}
				mustRun(t, args...)
			})
			if !ok {
				return // later lines build on this one
			}
		}
	})
}

func needsSharedSim(lines []string) bool {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "serve" {
			return false // it serves its own cloud, and the group uses it
		}
	}
	for _, l := range lines {
		if !strings.Contains(l, " --sim") && !strings.HasPrefix(l, "ostask sim") {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// runSimLine runs 'ostask sim ...' until it serves, then stops it.
func runSimLine(t *testing.T, args []string) {
	args = append([]string(nil), args...)
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--listen":
			args[i+1] = "127.0.0.1:0" // the example's port may be taken here
		case "--clouds-yaml":
			args[i+1] = filepath.Join(t.TempDir(), "clouds.yaml")
		}
	}
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	runSim(t, args[1:]...)
}

// Every 'ostask' line of the README's sh blocks runs as written.
func TestReadmeCommandLines(t *testing.T) {
	for i, b := range codeBlocks(readme(t)) {
		if b.lang != "sh" {
			continue
		}
		if lines := ostaskLines(b.text); len(lines) > 0 {
			runExampleGroup(t, exampleGroup{name: fmt.Sprintf("block %d", i+1), lines: lines})
		}
	}
}

// Every command's --help example runs as written.
func TestHelpExamplesRun(t *testing.T) {
	var groups []exampleGroup
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example != "" {
			groups = append(groups, exampleGroup{name: c.CommandPath(), lines: ostaskLines(c.Example)})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
	if len(groups) < 20 {
		t.Fatalf("only %d commands have examples", len(groups))
	}
	for _, g := range groups {
		if len(g.lines) == 0 {
			t.Errorf("%s: the example has no ostask line", g.name)
			continue
		}
		runExampleGroup(t, g)
	}
}
