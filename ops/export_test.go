package ops

// Pending reports the number of pending watches per resource kind.
func (c *Cloud) Pending() map[Kind]int {
	return map[Kind]int{KindServer: c.servers.pendingCount(), KindVolume: c.volumes.pendingCount(), KindImage: c.images.pendingCount()}
}

// MonitorPageSize is the page size of the monitor's server lists.
const MonitorPageSize = monitorPageSize
