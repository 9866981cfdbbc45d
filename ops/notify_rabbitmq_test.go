package ops_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/internal/amqptest"
	"github.com/ostask/ostask/ops"
)

// rabbitExchange is an exchange of the test's own, deleted after it, so
// that tests never publish on a cloud's real "nova" exchange.
func rabbitExchange(t *testing.T, url string) string {
	name := "ostask-test-" + uuid.NewString()[:8]
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
		}
	})
	return name
}

// startRabbit starts a cloudsim with plan publishing through RabbitMQ on
// an exchange of the test's own, and a Cloud consuming it, connected.
func startRabbit(t *testing.T, ctx context.Context, plan *cloudsim.FaultPlan, reconcile time.Duration) *notifyCloud {
	t.Helper()
	url := amqptest.URL(t)
	exchange := rabbitExchange(t, url)
	pub, err := cloudsim.DialAMQP(url, exchange)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() }) // after the simulator's Close (cleanups run last first)
	nc := startNotify(t, plan, ops.NotificationConfig{URL: url, Exchange: exchange, ReconcileInterval: reconcile}, pub)
	nc.waitConnected(t, ctx)
	return nc
}

// Through a real RabbitMQ, cloudsim publishing: every operation completes
// by its event with no monitor round, also after the Cloud's connection
// was cut and came back, and after cloudsim's was.
func TestNotificationsThroughRabbitMQ(t *testing.T) {
	ctx := ctxT(t)
	nc := startRabbit(t, ctx, nil, time.Hour)
	n := lifecycle(t, ctx, nc.cloud, nc.sim, "amqp", 4)

	if !nc.cloud.CutNotificationConnection() {
		t.Fatal("no AMQP connection to cut")
	}
	nc.waitConnected(t, ctx)
	n += lifecycle(t, ctx, nc.cloud, nc.sim, "amqp-again", 2)

	nc.sim.CutNotifications(false) // cloudsim's publisher reconnects
	n += lifecycle(t, ctx, nc.cloud, nc.sim, "amqp-pub-cut", 2)

	st := nc.cloud.Stats()
	if r := st.Rounds[ops.KindServer]; r != 0 {
		t.Errorf("%d server monitor rounds, want 0", r)
	}
	ns := st.Notifications
	if ns.Completions != int64(n) || ns.Connects != 2 || ns.Failures != 1 || ns.Malformed != 0 {
		t.Errorf("notification stats %+v, want %d completions, 2 connects, 1 failure", ns, n)
	}
}

// Events reach the Cloud through RabbitMQ even while cloudsim drops and
// reorders some: every outcome is still true.
func TestNotificationsThroughRabbitMQWithFaults(t *testing.T) {
	ctx := ctxT(t)
	plan := &cloudsim.FaultPlan{Notify: cloudsim.NotifyFaults{Drop: 0.2, Duplicate: 0.2, Reorder: 0.2, Delay: 0.2, DelayBy: 20 * time.Millisecond}}
	nc := startRabbit(t, ctx, plan, 100*time.Millisecond)
	lifecycle(t, ctx, nc.cloud, nc.sim, "amqp-faults", 4)
	if ns := nc.cloud.Stats().Notifications; ns.Completions == 0 {
		t.Errorf("no completion by events: %+v", ns)
	}
}
