package ops

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
