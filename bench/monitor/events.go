package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// eventsP99Target is #12's target for the events waiter: p99 from the
// state change to the future done.
const eventsP99Target = 50 * time.Millisecond

// reconcileInterval is the events waiter's polling interval while events
// flow (ops.DefaultReconcileInterval).
const reconcileInterval = ops.DefaultReconcileInterval

// runEvents is runMonitor with the Cloud completing from cloudsim's
// notifications, published to a real RabbitMQ on an exchange of the run's
// own (deleted afterwards) and consumed from it.
func runEvents(ctx context.Context, n, workers int, url string) (result, error) {
	exchange := "ostask-bench-" + uuid.NewString()[:8]
	pub, err := cloudsim.DialAMQP(url, exchange)
	if err != nil {
		return result{}, err
	}
	defer deleteExchange(url, exchange)
	defer pub.Close()
	t := simTiming()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Timing: &t, Publisher: pub})
	if err != nil {
		return result{}, err
	}
	defer sim.Close()
	cloud, err := ops.Dial(ctx, ops.Auth{Options: authOpts(sim)}, ops.Config{MinInterval: pollInterval, MaxInterval: pollInterval,
		RateLimit: 1e6, Burst: 1e6, Notifications: &ops.NotificationConfig{URL: url, Exchange: exchange, ReconcileInterval: reconcileInterval}})
	if err != nil {
		return result{}, err
	}
	defer cloud.Close()
	// The consumer binds its queue on its own goroutine: wait for it, so
	// that the run measures events, not the start-up.
	for deadline := time.Now().Add(10 * time.Second); !cloud.Stats().Notifications.Connected; {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("notifications never connected: %v", cloud.Stats().Notifications.Err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sim.ResetCounters()
	load := loadAvg1()
	ids, done, wall, err := createAll(ctx, cloud, n, workers)
	if err != nil {
		return result{}, err
	}
	r := measure(sim, "ostask events (RabbitMQ)", n, ids, done, wall, load)
	r.events = true
	if ns := cloud.Stats().Notifications; ns.Completions != int64(n) {
		fmt.Printf("note: N=%d: %d of %d completions by events (%d found by reconciliation)\n", n, ns.Completions, n, ns.Missed)
	}
	return r, nil
}

func deleteExchange(url, name string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_ = ch.ExchangeDelete(name, false, false)
	}
}

// createEnds records when Nova emitted instance.create.end for each
// server, read on a queue of the bench's own on the cloud's nova exchange.
type createEnds struct {
	conn *amqp.Connection
	done chan struct{}
	mu   sync.Mutex
	at_  map[string]time.Time
}

func watchCreateEnds(url, exchange string) (*createEnds, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, fmt.Errorf("watch instance.create.end: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, err
	}
	// As oslo.messaging declares it; a no-op where the cloud did.
	err = ch.ExchangeDeclare(exchange, "topic", false, false, false, false, nil)
	var q amqp.Queue
	if err == nil {
		q, err = ch.QueueDeclare("", false, true, true, false, nil)
	}
	if err == nil {
		err = ch.QueueBind(q.Name, "versioned_notifications.info", exchange, false, nil)
	}
	var dels <-chan amqp.Delivery
	if err == nil {
		dels, err = ch.Consume(q.Name, "", true, true, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("watch instance.create.end: %w", err)
	}
	c := &createEnds{conn: conn, done: make(chan struct{}), at_: map[string]time.Time{}}
	go func() {
		defer close(c.done)
		for d := range dels {
			var env struct {
				Msg string `json:"oslo.message"`
			}
			var msg struct {
				Event   string `json:"event_type"`
				Stamp   string `json:"timestamp"`
				Payload struct {
					Data struct {
						UUID string `json:"uuid"`
					} `json:"nova_object.data"`
				} `json:"payload"`
			}
			if json.Unmarshal(d.Body, &env) != nil || json.Unmarshal([]byte(env.Msg), &msg) != nil || msg.Event != "instance.create.end" {
				continue
			}
			if t, err := time.Parse("2006-01-02 15:04:05.999999", msg.Stamp); err == nil {
				c.mu.Lock()
				c.at_[msg.Payload.Data.UUID] = t
				c.mu.Unlock()
			}
		}
	}()
	return c, nil
}

func (c *createEnds) at(id string) (time.Time, bool) {
	if c == nil {
		return time.Time{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at_[id]
	return t, ok
}

// wait waits (up to a few seconds) until the create.end of every id was
// read: the bench's queue and the Cloud's are read independently.
func (c *createEnds) wait(ids []string) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		all := true
		for _, id := range ids {
			if _, ok := c.at_[id]; !ok {
				all = false
				break
			}
		}
		c.mu.Unlock()
		if all {
			return
		}
	}
}

func (c *createEnds) stop() {
	_ = c.conn.Close()
	<-c.done
}
