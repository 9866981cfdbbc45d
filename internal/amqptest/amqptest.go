// Package amqptest finds the RabbitMQ that tests of notifications use.
package amqptest

import (
	"os"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the RabbitMQ this project's machines run.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// URL returns the RabbitMQ the tests use: OSTASK_TEST_AMQP, or
// DefaultURL. In CI (CI=true) it must be reachable and the test fails
// without it; elsewhere the test skips.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("OSTASK_TEST_AMQP")
	if url == "" {
		url = DefaultURL
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("RabbitMQ unreachable in CI (start it: rabbitmq-server -detached): %v", err)
		}
		tb.Skipf("RabbitMQ unreachable (set OSTASK_TEST_AMQP, or start it: rabbitmq-server -detached): %v", err)
	}
	_ = conn.Close()
	return url
}
