package cloudsim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/internal/amqptest"
)

// The publisher sends what was published between Hold and Flush, in
// order, also when its connection was cut in between (it reconnects).
func TestAMQPPublisherHoldAndFlush(t *testing.T) {
	url := amqptest.URL(t)
	exchange := "cloudsim-test-" + uuid.NewString()[:8]
	pub, err := cloudsim.DialAMQP(url, exchange)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.ExchangeDelete(exchange, false, false) }()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err == nil {
		err = ch.QueueBind(q.Name, cloudsim.NotifyTopicInfo, exchange, false, nil)
	}
	var dels <-chan amqp.Delivery
	if err == nil {
		dels, err = ch.Consume(q.Name, "", true, true, false, false, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var want []string
	publish := func(n int) {
		for range n {
			body := fmt.Sprintf("note-%d", len(want))
			if err := pub.Publish(ctx, cloudsim.NotifyTopicInfo, []byte(body)); err != nil {
				t.Fatal(err)
			}
			want = append(want, body)
		}
	}
	pub.Hold()
	publish(3)
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	pub.Hold()
	publish(2)
	pub.Cut() // what was held goes out before the close, or is lost with it
	publish(2)
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	publish(1) // not held
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case d := <-dels:
			got = append(got, string(d.Body))
		case <-timeout:
			t.Fatalf("received %v, want %v", got, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("received %v, want %v", got, want)
	}
}
