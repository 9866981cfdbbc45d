package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (CHROMIUM overrides it). Without it the
// browser tests are skipped, except under CI=true, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed at %s (apt-get install chromium): the browser tests cannot run", p)
		}
		t.Skipf("chromium is not installed at %s (apt-get install chromium; CI=true makes this a failure)", p)
	}
	return p
}

// moduleRoot is the repository's root (the directory of go.mod).
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// buildOstask builds cmd/ostask from this repository, so that the tests
// run the binary a user would, with the dashboard embedded.
func buildOstask(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ostask")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ostask")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ostask: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// service is an `ostask serve --sim` process.
type service struct {
	base string
	cmd  *exec.Cmd
	log  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startService runs `ostask serve --sim` with the given extra flags and
// waits until it answers /healthz (polling another process, with a
// deadline). It is stopped with SIGTERM when the test ends.
func startService(t *testing.T, bin string, extra ...string) *service {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	args := append([]string{"serve", "--sim", "--listen", addr,
		"--clouds-yaml", filepath.Join(dir, "clouds.yaml"),
		"--store", "sqlite:" + filepath.Join(dir, "ostask.db"),
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+dir)
	logs := &lockedBuffer{}
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", bin, args, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	s := &service{base: "http://" + addr, cmd: cmd, log: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("ostask serve did not stop within 20s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("ostask serve output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("ostask serve %v exited: %v\n%s", args, waitErr, logs.String())
		default:
		}
		res, err := http.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ostask serve did not answer /healthz within 60s\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond) // polling another process
	}
}

// apiClient talks to the service as the browser does: with the session
// cookie (in --sim mode GET /v1/auth/session logs the demo user in).
type apiClient struct {
	base string
	c    *http.Client
}

func newAPIClient(t *testing.T, base string) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	a := &apiClient{base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	var who map[string]any
	if code := a.do(t, "GET", "/v1/auth/session", nil, &who); code != 200 {
		t.Fatalf("GET /v1/auth/session: %d", code)
	}
	return a
}

func (a *apiClient) do(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// browser is one headless chromium with one tab, and everything its pages
// wrote to the console.
type browser struct {
	t     *testing.T
	ctx   context.Context // the tab
	base  string
	shots string // where screenshots go

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := chromiumPath(t)
	// The flags this closed machine needs: no network but localhost, and
	// nothing kept between runs (a fresh profile).
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base, shots: os.Getenv("OSTASK_SCREENSHOTS")}
	if b.shots == "" {
		b.shots = t.TempDir()
	} else if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// The first Run starts the browser; it must not have a timeout.
	if err := chromedp.Do(ctx); err != nil {
		cancelB()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancelB()
		cancelA()
		<-done
	})
	return b
}

// do runs actions on the tab, failing the test after timeout.
func (b *browser) do(timeout time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(b.t.Name(), "-")
	b.shot("failed-" + name)
	loc, _ := b.eval(5*time.Second, "location.href")
	b.t.Fatalf("%s (at %v)", fmt.Sprintf(format, args...), loc)
}

func (b *browser) eval(timeout time.Duration, js string) (any, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[any](js))
}

// js evaluates an expression and decodes its value into out.
func (b *browser) js(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluate %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.fail("evaluate %s: %v (%s)", expr, err, raw)
		}
	}
}

// waitJS waits until a JavaScript expression is truthy (the page is
// observed as it changes, never reloaded).
func (b *browser) waitJS(timeout time.Duration, what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		b.fail("waiting for %s (%s): %v", what, expr, err)
	}
}

func (b *browser) visit(path string) {
	b.t.Helper()
	b.do(30*time.Second, "navigate to "+path, chromedp.Navigate(b.base+path))
}

// route follows a link of the application without reloading the page (as
// a click on one of its links does).
func (b *browser) route(path string) {
	b.t.Helper()
	b.js(fmt.Sprintf(`(history.pushState(null, '', %q), dispatchEvent(new PopStateEvent('popstate')), true)`, path), nil)
}

func (b *browser) click(css string) {
	b.t.Helper()
	b.do(20*time.Second, "click "+css, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

// fill replaces an input's value by typing (so the page sees input events).
func (b *browser) fill(css, value string) {
	b.t.Helper()
	b.js(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) throw new Error('no ' + %q); e.focus(); e.select && e.select(); return true })()`, css, css), nil)
	acts := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.CSS(css))}
	// Clear by selecting all and typing over it; an empty value deletes.
	acts = append(acts, chromedp.KeyEvent("\b"))
	if value != "" {
		acts = append(acts, chromedp.SendKeys(chromedp.CSS(css), value))
	}
	b.do(20*time.Second, "fill "+css, acts...)
}

// choose picks an option of a <select> as a person would (a change event).
func (b *browser) choose(css, value string) {
	b.t.Helper()
	b.js(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event('change', {bubbles: true})); return e.value })()`, css, value), nil)
}

func (b *browser) text(css string) string {
	b.t.Helper()
	var s string
	b.js(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, css), &s)
	return s
}

// shot saves a screenshot of the viewport as name.png.
func (b *browser) shot(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot %s", p)
	return p
}

// initScript runs in every new document before the application: it keeps a
// record of the states the graph's nodes showed, so that a test can tell
// that a graph changed in place, and a marker that a reload would lose.
const initScript = `
window.__seenStates = {};
window.__loadedAt = performance.timeOrigin;
new MutationObserver((records) => {
  for (const r of records) {
    const nodes = r.type === 'attributes' ? [r.target] : [...r.addedNodes].flatMap((n) => n.querySelectorAll ? [n, ...n.querySelectorAll('[data-node]')] : []);
    for (const n of nodes) {
      if (n.dataset && n.dataset.node) (window.__seenStates[n.dataset.node] ||= []).push(n.dataset.state);
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
`

func (b *browser) installInitScript() {
	b.t.Helper()
	b.do(10*time.Second, "add init script", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: initScript})
		return chromedp.Void{}, err
	})
}

var networkStatus = regexp.MustCompile(`status of (\d{3})`)

// consoleErrors are the console's errors and uncaught exceptions. A failed
// request the application expects and handles (a 4xx answer: a missing
// fault, another project's task, a form's 400) is logged by the browser
// as an error too; those are returned apart.
func (b *browser) consoleErrors() (errs, expected []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.Type != chromedp.ConsoleError && !m.IsException() && m.Type != "assert" {
			continue
		}
		s := m.String()
		if m.URL != "" {
			s += " (" + m.URL + ")"
		}
		if m.Source == "network" {
			if sm := networkStatus.FindStringSubmatch(m.Text); sm != nil {
				if code, _ := strconv.Atoi(sm[1]); code >= 400 && code < 500 {
					expected = append(expected, s)
					continue
				}
			}
		}
		errs = append(errs, s)
	}
	return errs, expected
}

// measure reads a performance.measure the application recorded.
func (b *browser) measure(name string) (float64, bool) {
	var ms []float64
	b.js(fmt.Sprintf(`performance.getEntriesByName(%q, 'measure').map((e) => e.duration)`, name), &ms)
	if len(ms) == 0 {
		return 0, false
	}
	return ms[len(ms)-1], true
}
