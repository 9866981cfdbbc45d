package ops

// CutNotificationConnection closes the Cloud's AMQP connection, as a
// broker restart would; it reports whether there was one.
func (c *Cloud) CutNotificationConnection() bool {
	return c.notify != nil && c.notify.amqp != nil && c.notify.amqp.cut()
}

// HubQueue is how many messages a Cloud of a NotificationHub may have waiting.
const HubQueue = hubQueue
