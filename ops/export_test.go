package ops

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
)

// Pending reports the number of pending watches per resource kind.
func (c *Cloud) Pending() map[Kind]int {
	return map[Kind]int{KindServer: c.servers.pendingCount(), KindVolume: c.volumes.pendingCount(), KindImage: c.images.pendingCount()}
}

// MonitorPageSize is the page size of the monitor's server lists.
const MonitorPageSize = monitorPageSize

// ListForm is a server list form for tests: sortKey "" means Nova's order.
type ListForm struct{ Name, SortKey, SortDir string }

// SetServerListForms replaces the forms the compute monitor tries, before
// any round has run.
func (c *Cloud) SetServerListForms(forms ...ListForm) {
	fs := make([]listForm, len(forms))
	for i, f := range forms {
		fs[i] = listForm{name: f.Name, sortKey: f.SortKey, sortDir: f.SortDir}
	}
	c.serverList.mu.Lock()
	defer c.serverList.mu.Unlock()
	c.serverList.forms, c.serverList.cur = fs, 0
}

// FormSwitchAfter is how many failing rounds make the monitor give up a
// list form.
const FormSwitchAfter = formSwitchAfter

// SetMonitorPageSize sets the page size of the compute monitor's lists.
func (c *Cloud) SetMonitorPageSize(n int) { c.serverList.pageSize = n }

// AfterServerListPage makes fn see each page's server ids before the
// monitor asks for the next page.
func (c *Cloud) AfterServerListPage(fn func(ids []string)) {
	c.serverList.mu.Lock()
	defer c.serverList.mu.Unlock()
	c.serverList.afterPage = fn
}

// SetServerStaleRounds sets how many unseen rounds a server watch other
// than a delete waits before a direct GET.
func (c *Cloud) SetServerStaleRounds(n uint64) { c.servers.staleAfter = n }

// ConfigDefaults returns c with the defaults filled in.
func ConfigDefaults(c Config) Config { return c.withDefaults() }

// Loser makes a Cloud lose answers: the armed request is carried out by
// the cloud, and then fails as if the connection dropped before the
// answer came (a lost response), as cloudsim's lose-response fault does.
// It lets the tests against a real cloud lose answers too.
type Loser struct {
	base   http.RoundTripper
	mu     sync.Mutex
	method string
	suffix string
	lost   int
}

// InstallLoser wraps c's transport; call it before c makes requests
// other than Dial's.
func InstallLoser(c *Cloud) *Loser {
	l := &Loser{base: c.transport.base}
	c.transport.base = l
	return l
}

// Arm makes the next request with method whose path ends with suffix lose
// its answer.
func (l *Loser) Arm(method, suffix string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.method, l.suffix = method, suffix
}

// Lost reports how many answers were lost.
func (l *Loser) Lost() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *Loser) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	lose := l.method != "" && r.Method == l.method && strings.HasSuffix(r.URL.Path, l.suffix)
	if lose {
		l.method, l.lost = "", l.lost+1
	}
	l.mu.Unlock()
	resp, err := l.base.RoundTrip(r)
	if err != nil || !lose {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}
